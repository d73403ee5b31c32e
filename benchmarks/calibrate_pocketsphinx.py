"""Calibrate pocketsphinx's confidence and thresholds; measure them on the held-out test set.

    .venv/bin/python benchmarks/calibrate_pocketsphinx.py          # ~1 min
    .venv/bin/python benchmarks/calibrate_pocketsphinx.py --fit    # refit the model on dev
    .venv/bin/python benchmarks/calibrate_pocketsphinx.py --fit --fit-on both   # ~5 min

Renders ``SETS[("en", "dev")]`` and ``SETS[("en", "test")]`` (tests/support/speech_sets.py) in
every condition (clean, 20 dB white, 20 dB pink, and each of them through an A-law round trip
with the silence the live path's VAD leaves around an utterance), decodes each utterance with
the real engine and prints:

- with ``--fit``, the two :class:`~ivr.speech.sphinx_score.Calibration` models fitted on dev
  (both renderings): on the grammar decode's scores, and on them with a phone decode's
  evidence (:mod:`ivr.speech.sphinx_phones`; used for the decodes the first leaves in doubt);
  or, with ``--fit-on``, also / only on the calibration set
  (tests/support/speech_calibration.py: ~2100 utterances, 5 menus, 24 voices, clean to 10 dB,
  half A-law; nothing of the test split) -- paste it into ``ivr/speech/sphinx_score.py``;
- the dev sweep: for each threshold, in-grammar accuracy (right choice at or above it) and
  out-of-grammar rejection (below it, or no choice);
- the thresholds chosen on dev: ``reject_below`` is the lowest that rejects >= 90 % of dev
  out-of-grammar speech, ``accept_at`` the lowest that accepts <= 2 % of it outright;
- dev and test figures per condition with the engine's shipped thresholds (or the chosen
  ones with ``--chosen``), and the decode time per utterance.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import speech_calibration
from support.speech_audio import alaw_round_trip, speech
from support.speech_sets import CONDITIONS, SETS

from ivr.speech import grammar
from ivr.speech.base import Recognition, SpeechChoice, Thresholds
from ivr.speech.decision import decide
from ivr.speech.pocketsphinx import PocketsphinxEngine
from ivr.speech.sphinx_phones import needs_phones
from ivr.speech.sphinx_score import Calibration, Decoded, features, fit

TARGET_REJECTION = 0.90
MAX_OUTRIGHT_ACCEPTS = 0.02
GRID = [round(0.01 * i, 2) for i in range(1, 100)]


@dataclass(frozen=True, slots=True)
class Trial:
    condition: str
    phrase: str
    expected: str | None  # the choice key, None for out-of-grammar speech
    decoded: Decoded
    choice: str | None
    seconds: float  # decode time
    phones: Decoded | None  # with a phone decode's evidence (when it has a choice)
    phone_seconds: float


@dataclass(frozen=True, slots=True)
class Models:
    """The grammar decode's model and the one with phone evidence (``None``: not used)."""

    first: Calibration
    phones: Calibration | None

    def confidence(self, trial: Trial) -> float:
        """The engine's rule: the first model, the second in its band."""
        if trial.choice is None:
            return 0.0
        value = self.first.confidence(trial.decoded)
        if self.phones is not None and trial.phones is not None and needs_phones(value):
            value = self.phones.confidence(trial.phones)
        return value

    def seconds(self, trial: Trial) -> float:
        """Decode time, with the phone decode when the rule asks for it."""
        value = self.first.confidence(trial.decoded) if trial.choice is not None else 0.0
        asked = self.phones is not None and trial.choice is not None and needs_phones(value)
        return trial.seconds + (trial.phone_seconds if asked else 0.0)


LEADS_S = (0.2, 0.35, 0.5, 0.75)
# The first 58 samples of live calls in the lab (SIPp plays the A-law WAV's header as audio),
# as kept by speech.keep_utterances: a 7 ms burst at about -19 dBFS.
CLICK = (-120, -456, -312, -312, -4032, -15616, -5248, -5504, -40, -328, -56, -264, -1248,
         -1568, -560, -22016, -3008, -5504, -5504, -5504, -4992, -5504, -5248, -5504, -344,
         -3392, -5504, -5504, -344, -3392, -5504, -5504, -5248, -5504, -7552, -5504, -5504,
         -5504, -1248, -1312, -1440, -560, -4480, -5504, -5504, -5504, 1888, -16128, -5248,
         -5504, -1120, -1312, -560, -1312, 1888, -16128, -5248, -5504)  # fmt: skip


def live_click(pcm: bytes, at_s: float = 0.05) -> bytes:
    """``pcm`` with :data:`CLICK` added ``at_s`` into it (its pre-roll)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    start = int(at_s * 8000)
    samples[start : start + len(CLICK)] += np.asarray(CLICK, dtype=np.int32)
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def condition_name(snr_db: float | None, noise: str) -> str:
    return "clean" if snr_db is None else f"{noise} {snr_db:g} dB"


def decode(
    engine: PocketsphinxEngine,
    menu: Sequence[SpeechChoice],
    pcm: bytes,
    condition: str,
    phrase: str,
    key: str | None,
) -> Trial:
    rec = engine.recognizer(menu, "en")
    rec.accept(pcm)
    t0 = time.perf_counter()
    decoded = rec.decode()
    seconds = time.perf_counter() - t0
    found = grammar.match(decoded.text, menu, "en")
    t0 = time.perf_counter()
    phones = rec.with_phones(decoded) if found else None
    phone_seconds = time.perf_counter() - t0
    choice = found.key if found else None
    return Trial(condition, phrase, key, decoded, choice, seconds, phones, phone_seconds)


def trials(engine: PocketsphinxEngine, split: str, *, live: bool = False) -> list[Trial]:
    """Every utterance of the split, decoded. Noise seeds: the split's seed and a count.

    ``live``: as calls reach the recogniser, through A-law with the VAD's pre-roll (0.2 to
    0.75 s, in turn) before the words and its end silence (0.7 s) after them, every other one
    with the click seen on live calls in the pre-roll (:func:`live_click`)."""
    s = SETS[("en", split)]
    said = [*s.in_grammar, *((p, None) for p in s.out_of_grammar)]
    out, n = [], 0
    for snr_db, noise in CONDITIONS:
        for voice in s.voices:
            for phrase, key in said:
                n += 1
                seed = s.seed * 10000 + n
                pad = {"lead_s": LEADS_S[n % len(LEADS_S)], "tail_s": 0.7} if live else {}
                pcm = speech(phrase, voice, snr_db=snr_db, noise=noise, seed=seed, **pad)
                name = condition_name(snr_db, noise)
                if live:
                    pcm = live_click(pcm) if n % 2 else pcm
                    pcm, name = alaw_round_trip(pcm), f"{name} a-law"
                out.append(decode(engine, s.menu, pcm, name, phrase, key))
    return out


def calibration_trials(engine: PocketsphinxEngine) -> list[Trial]:
    """The calibration set (tests/support/speech_calibration.py), decoded."""
    return [
        decode(engine, u.menu, u.pcm(), u.condition, u.phrase, u.key)
        for u in speech_calibration.utterances()
    ]


def recognition(trial: Trial, calibration: Models) -> Recognition:
    confidence = calibration.confidence(trial)
    return Recognition(trial.decoded.text, trial.choice, confidence, "pocketsphinx")


def figures(found: list[Trial], calibration: Models, th: Thresholds) -> tuple[float, ...]:
    """(in-grammar accept+confirm right, accept-only right, out-of-grammar rejected,
    out-of-grammar accepted outright)."""
    ing = [t for t in found if t.expected is not None]
    oog = [t for t in found if t.expected is None]
    verdicts = {id(t): decide(recognition(t, calibration), th) for t in found}
    kept = sum(verdicts[id(t)] != "reject" and t.choice == t.expected for t in ing)
    accepted = sum(verdicts[id(t)] == "accept" and t.choice == t.expected for t in ing)
    rejected = sum(verdicts[id(t)] == "reject" for t in oog)
    taken = sum(verdicts[id(t)] == "accept" for t in oog)
    return kept / len(ing), accepted / len(ing), rejected / len(oog), taken / len(oog)


def choose(found: list[Trial], calibration: Models) -> Thresholds:
    """The dev rule: the lowest ``reject_below`` reaching the target rejection, the lowest
    ``accept_at`` (not below it) that takes few out-of-grammar phrases outright."""
    reject = next(
        (t for t in GRID if figures(found, calibration, Thresholds(t, t))[2] >= TARGET_REJECTION),
        GRID[-1],
    )
    accept = next(
        (
            t
            for t in GRID
            if t >= reject
            and figures(found, calibration, Thresholds(t, t))[3] <= MAX_OUTRIGHT_ACCEPTS
        ),
        GRID[-1],
    )
    return Thresholds(reject, max(accept, reject))


def report(label: str, found: list[Trial], calibration: Models, th: Thresholds) -> None:
    print(f"\n{label} with {th}:")
    print(f"  {'condition':20} {'in-gr ok':>9} {'accept':>7} {'oog rej':>8} {'oog acc':>8}")
    for name in [*dict.fromkeys(t.condition for t in found), "all"]:
        part = [t for t in found if name in ("all", t.condition)]
        kept, accepted, rejected, taken = figures(part, calibration, th)
        print(f"  {name:20} {kept:9.1%} {accepted:7.1%} {rejected:8.1%} {taken:8.1%}")
    times = sorted(calibration.seconds(t) for t in found)
    doubted = sum(calibration.seconds(t) > t.seconds for t in found) / len(found)
    raw = [t for t in found if t.expected is not None]
    print(
        f"  grammar decode alone right: {sum(t.choice == t.expected for t in raw) / len(raw):.1%}"
        f"; decode ms/utterance: mean {1000 * statistics.fmean(times):.0f}, "
        f"p95 {1000 * times[int(0.95 * (len(times) - 1))]:.0f} (a phone decode for {doubted:.0%})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fit", action="store_true", help="refit the logistic model")
    p.add_argument(
        "--fit-on",
        choices=("dev", "calibration", "both"),
        default="dev",
        help="what to fit on: the dev split (both renderings), the calibration set, or both",
    )
    p.add_argument("--chosen", action="store_true", help="report with the thresholds chosen")
    args = p.parse_args()
    engine = PocketsphinxEngine()
    dev = trials(engine, "dev") + trials(engine, "dev", live=True)
    calibration = Models(engine.calibration, engine.phone_calibration)
    if args.fit:
        fitted_on = [] if args.fit_on == "calibration" else list(dev)
        if args.fit_on != "dev":
            fitted_on += calibration_trials(engine)
        models = []
        for with_phones in (False, True):
            rows, said = [], []
            for t in fitted_on:
                found = features(t.phones if with_phones and t.phones else t.decoded)
                if t.choice is not None and found is not None:
                    rows.append(found)
                    said.append(t.choice == t.expected)
            models.append(fit(rows, said))
            print(f"fitted on {len(rows)} decodes ({args.fit_on}):\n{models[-1]!r}")
        calibration = Models(*models)
    print("\ndev sweep (threshold: in-grammar right at or above, out-of-grammar rejected)")
    for t in GRID[4::5]:
        kept, _, rejected, _ = figures(dev, calibration, Thresholds(t, t))
        print(f"  {t:4.2f}: {kept:6.1%} {rejected:6.1%}")
    chosen = choose(dev, calibration)
    print(f"\nchosen on dev: {chosen}")
    shipped = chosen if args.chosen or args.fit else engine.thresholds
    report("dev", dev, calibration, shipped)
    test = trials(engine, "test") + trials(engine, "test", live=True)
    report("test (held out)", test, calibration, shipped)


if __name__ == "__main__":
    main()
