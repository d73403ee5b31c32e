"""Calibrate pocketsphinx's confidence and thresholds on the dev set; measure them on test.

    .venv/bin/python benchmarks/calibrate_pocketsphinx.py          # ~1 min
    .venv/bin/python benchmarks/calibrate_pocketsphinx.py --fit    # refit the logistic model

Renders ``SETS[("en", "dev")]`` and ``SETS[("en", "test")]`` (tests/support/speech_sets.py) in
every condition (clean, 20 dB white, 20 dB pink), decodes each utterance with the real engine
and prints:

- with ``--fit``, the :class:`~ivr.speech.sphinx_score.Calibration` fitted on dev (paste it
  into ``ivr/speech/sphinx_score.py``);
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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.speech_audio import speech
from support.speech_sets import CONDITIONS, SETS

from ivr.speech import grammar
from ivr.speech.base import Recognition, Thresholds
from ivr.speech.decision import decide
from ivr.speech.pocketsphinx import PocketsphinxEngine
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


def condition_name(snr_db: float | None, noise: str) -> str:
    return "clean" if snr_db is None else f"{noise} {snr_db:g} dB"


def trials(engine: PocketsphinxEngine, split: str) -> list[Trial]:
    """Every utterance of the split, decoded. Noise seeds: the split's seed and a count."""
    s = SETS[("en", split)]
    said = [*s.in_grammar, *((p, None) for p in s.out_of_grammar)]
    out, n = [], 0
    for snr_db, noise in CONDITIONS:
        for voice in s.voices:
            for phrase, key in said:
                n += 1
                pcm = speech(phrase, voice, snr_db=snr_db, noise=noise, seed=s.seed * 10000 + n)
                rec = engine.recognizer(s.menu, "en")
                rec.accept(pcm)
                t0 = time.perf_counter()
                decoded = rec.decode()
                seconds = time.perf_counter() - t0
                found = grammar.match(decoded.text, s.menu, "en")
                choice = found.key if found else None
                name = condition_name(snr_db, noise)
                out.append(Trial(name, phrase, key, decoded, choice, seconds))
    return out


def recognition(trial: Trial, calibration: Calibration) -> Recognition:
    confidence = calibration.confidence(trial.decoded) if trial.choice else 0.0
    return Recognition(trial.decoded.text, trial.choice, confidence, "pocketsphinx")


def figures(found: list[Trial], calibration: Calibration, th: Thresholds) -> tuple[float, ...]:
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


def choose(found: list[Trial], calibration: Calibration) -> Thresholds:
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


def report(label: str, found: list[Trial], calibration: Calibration, th: Thresholds) -> None:
    print(f"\n{label} with {th}:")
    print(f"  {'condition':14} {'in-gr ok':>9} {'accept':>7} {'oog rej':>8} {'oog acc':>8}")
    for name in [*dict.fromkeys(t.condition for t in found), "all"]:
        part = [t for t in found if name in ("all", t.condition)]
        kept, accepted, rejected, taken = figures(part, calibration, th)
        print(f"  {name:14} {kept:9.1%} {accepted:7.1%} {rejected:8.1%} {taken:8.1%}")
    times = sorted(t.seconds for t in found)
    raw = [t for t in found if t.expected is not None]
    print(
        f"  grammar decode alone right: {sum(t.choice == t.expected for t in raw) / len(raw):.1%}"
        f"; decode ms/utterance: mean {1000 * statistics.fmean(times):.0f}, "
        f"p95 {1000 * times[int(0.95 * (len(times) - 1))]:.0f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fit", action="store_true", help="refit the calibration on dev")
    p.add_argument("--chosen", action="store_true", help="report with the thresholds chosen")
    args = p.parse_args()
    engine = PocketsphinxEngine()
    dev = trials(engine, "dev")
    calibration = engine.calibration
    if args.fit:
        rows, said = [], []
        for t in dev:
            found = features(t.decoded)
            if t.choice is not None and found is not None:
                rows.append(found)
                said.append(t.choice == t.expected)
        calibration = fit(rows, said)
        print(f"fitted on {len(rows)} dev decodes:\n{calibration!r}")
    print("\ndev sweep (threshold: in-grammar right at or above, out-of-grammar rejected)")
    for t in GRID[4::5]:
        kept, _, rejected, _ = figures(dev, calibration, Thresholds(t, t))
        print(f"  {t:4.2f}: {kept:6.1%} {rejected:6.1%}")
    chosen = choose(dev, calibration)
    print(f"\nchosen on dev: {chosen}")
    shipped = chosen if args.chosen or args.fit else engine.thresholds
    report("dev", dev, calibration, shipped)
    report("test (held out)", trials(engine, "test"), calibration, shipped)


if __name__ == "__main__":
    main()
