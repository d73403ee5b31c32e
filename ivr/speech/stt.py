"""``ivr stt``: recognise one WAV file against a list of choices (try a menu's grammar).

``--choices "sales,support,billing"`` lists the choices, comma-separated; ``|`` separates
synonyms of one choice, the first being its name: ``"billing|bill,agent|operator|person"``
has two choices, ``billing`` (said "billing" or "bill") and ``agent``. The file is a mono
16-bit WAV; 8 kHz and 16 kHz are decoded as they are, other rates are resampled to 16 kHz.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ivr.errors import SpeechError
from ivr.speech.audio import MODEL_RATE_HZ, read_wav, resample
from ivr.speech.base import SAMPLE_RATE_HZ, Recognition, SpeechChoice
from ivr.speech.engines import ENGINE_NAMES, make_engine


def parse_choices(spec: str) -> list[SpeechChoice]:
    """``"billing|bill,agent|operator"`` -> choices keyed by their first phrase."""
    choices = []
    for item in spec.split(","):
        phrases = tuple(p.strip() for p in item.split("|") if p.strip())
        if phrases:
            choices.append(SpeechChoice(phrases[0], phrases))
    if not choices:
        raise SpeechError(f'no choices in {spec!r}; use e.g. --choices "sales,billing|bill"')
    return choices


def recognise_file(
    path: str, choices: list[SpeechChoice], engine: str, model: str | None, language: str
) -> Recognition:
    """Decode one WAV file with a fresh engine; blocking."""
    pcm = read_wav(path)
    speech = make_engine(engine, model=model)
    data, rate = pcm.data, pcm.rate_hz
    if rate not in (SAMPLE_RATE_HZ, MODEL_RATE_HZ):
        data, rate = resample(data, rate, MODEL_RATE_HZ), MODEL_RATE_HZ
    recognizer: Any = speech.recognizer(choices, language, input_rate_hz=rate)  # type: ignore[call-arg]
    recognizer.accept(data)
    result: Recognition = recognizer.result()
    return result


def run_stt(
    path: str,
    choices: str,
    engine: str = "pocketsphinx",
    model: str | None = None,
    as_json: bool = False,
    language: str = "en",
) -> int:
    """The ``ivr stt`` command: print what ``path`` says; exit code 0, or 1 on no match."""
    result = recognise_file(path, parse_choices(choices), engine, model, language)
    if as_json:
        print(
            json.dumps(
                {
                    "text": result.text,
                    "choice": result.choice,
                    "confidence": result.confidence,
                    "engine": result.engine,
                },
                ensure_ascii=False,
            )
        )
    else:
        print(
            f"text: {result.text!r}\nchoice: {result.choice}\n"
            f"confidence: {result.confidence:.3f}\nengine: {result.engine}"
        )
    return 0 if result.choice is not None else 1


def _cmd(args: argparse.Namespace) -> int:
    return run_stt(args.file, args.choices, args.engine, args.model, args.json, args.language)


def add_stt_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``stt`` on an ``argparse`` sub-parsers object (sets ``func``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "stt",
        help="recognise a WAV file against menu choices",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="mono 16-bit WAV (8 or 16 kHz; other rates are resampled)")
    p.add_argument(
        "--choices",
        required=True,
        help='comma-separated choices, "|" between synonyms: "billing|bill,agent|operator|person"',
    )
    p.add_argument("--engine", choices=ENGINE_NAMES, default="pocketsphinx")
    p.add_argument("--model", help="model directory (required for vosk)")
    p.add_argument("--language", default="en", help="language of the speech (default en)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``stt`` alone (``python -m ivr.speech.stt``)."""
    parser = argparse.ArgumentParser(prog="ivr")
    add_stt_parser(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SpeechError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
