"""How sure pocketsphinx is that the menu phrase it decoded was said: a calibrated confidence.

A grammar decode forces every sound onto a menu phrase, so its text alone cannot tell "lost
card" from "pizza delivery please". The decode's own scores can: pocketsphinx normalises each
frame's acoustic scores by that frame's best senone, so a word's acoustic score per frame is
already a log-likelihood ratio against an unconstrained decode (a phone-loop decode of the same
audio scored ~0 per frame and added nothing, measured). Out-of-grammar speech forced onto a
phrase scores poorly per frame, often leaves speech in the "silences" around it (scored there
almost as silence, but its energy shows: :func:`energy_outside`, round 4), and stretches or
squeezes the phrase's phones.

:func:`features` turns one decode into those measures; :class:`Calibration` maps them to 0..1
with a logistic model fitted on the generated development set
(``benchmarks/calibrate_pocketsphinx.py``, which also prints the fitted numbers below). A fit
on a 2100-utterance calibration set (5 menus, 24 voices, clean to 10 dB, half A-law:
tests/support/speech_calibration.py) gave the same held-out curve (78 % of in-grammar speech
kept at 90 % out-of-grammar rejection, against 79 % for the dev fit) but lower confidence for
short words on small menus ("bill" 0.54, "agent" 0.34), so the dev fit is shipped. Round 3
scores only decodes that ended on a choice: hesitations and spoken noise rival the choices in
the grammar (:data:`ivr.speech.pocketsphinx.RIVALS`) and are rejected before this model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LN_FLOOR = -745.0  # ln of the smallest double: pocketsphinx's Python API returns exp(score)
_NON_SPEECH_PREFIXES = ("<", "[", "+")  # <sil>, <s>, [NOISE], +NSN+: fillers, not words


@dataclass(frozen=True, slots=True)
class Segment:
    """One word (or silence) of a decode: its frames and its acoustic score (natural log)."""

    word: str
    frames: int
    log_ascore: float

    @property
    def is_speech(self) -> bool:
        return not self.word.startswith(_NON_SPEECH_PREFIXES)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A grammar decode: its text, segments, frame count, the best path's score (natural log),
    the number of phones of its words (from the dictionary) and the share of the audio's
    energy that lies outside its words (:func:`energy_outside`)."""

    text: str
    segments: tuple[Segment, ...]
    frames: int
    log_path_score: float
    phones: int
    outside_energy: float = 0.0  # share of the audio's energy in frames given to no word


def log_score(linear: float) -> float:
    """The natural log of a score the Python API returned as ``exp(score)`` (0 when it
    underflowed: the worst score there is)."""
    return math.log(linear) if linear > 0.0 else LN_FLOOR


FEATURES = (
    "word_score",  # acoustic score per frame over the phrase's words
    "utterance_score",  # acoustic score per frame over the whole utterance
    "log_frames_per_phone",  # how stretched or squeezed the phrase is
    "path_score",  # the best path's score per frame (acoustic and grammar, all frames)
    "speech_share",  # share of the frames taken by words
    "pause_score",  # acoustic score per frame of the silences (speech left over scores badly)
    "outside_energy",  # share of the energy outside the words (speech left in a "silence")
)


def energy_outside(
    samples: np.ndarray, words: Sequence[tuple[int, int]], frame_samples: int = 160
) -> float:
    """The share of ``samples``' energy in the frames (``frame_samples`` each: 10 ms at
    16 kHz, the decoder's frame rate) that no ``(first, last)`` word frame span covers.

    A decode forced onto a short phrase leaves the rest of a longer request in its
    "silences" ("reset my pin" as "repeat": "my pin" in the silence after it); the silence
    model scores it only a little worse than silence, but its energy shows it.

    >>> energy_outside(np.full(480, 100.0), [(0, 1)])  # the last of three equal frames
    0.3333333333333333
    """
    count = len(samples) // frame_samples
    if count == 0:
        return 0.0
    frames = np.asarray(samples[: count * frame_samples], dtype=np.float64)
    energy = (frames.reshape(count, frame_samples) ** 2).mean(axis=1) + 1.0
    inside = np.zeros(count, dtype=bool)
    for first, last in words:
        inside[max(first, 0) : last + 1] = True
    return float(energy[~inside].sum() / energy.sum())


def features(decoded: Decoded) -> tuple[float, ...] | None:
    """The measures :class:`Calibration` weighs (in ``FEATURES`` order); ``None`` when the
    decode holds no word."""
    words = [s for s in decoded.segments if s.is_speech]
    speech = sum(s.frames for s in words)
    if not words or speech == 0 or decoded.frames == 0:
        return None
    pauses = [s for s in decoded.segments if not s.is_speech]
    pause_frames = sum(s.frames for s in pauses)
    return (
        sum(s.log_ascore for s in words) / speech,
        sum(s.log_ascore for s in decoded.segments) / decoded.frames,
        math.log(speech / max(decoded.phones, 1)),
        decoded.log_path_score / decoded.frames,
        speech / decoded.frames,
        sum(s.log_ascore for s in pauses) / pause_frames if pause_frames else 0.0,
        decoded.outside_energy,
    )


@dataclass(frozen=True, slots=True)
class Calibration:
    """A logistic model over standardised :data:`FEATURES`: the probability that the decoded
    phrase was said."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def confidence(self, decoded: Decoded) -> float:
        """0..1; 0 for a decode with no word."""
        found = features(decoded)
        if found is None:
            return 0.0
        z = self.bias + sum(
            w * (x - m) / s
            for w, x, m, s in zip(self.weights, found, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def fit(rows: Sequence[Sequence[float]], said: Sequence[bool], l2: float = 0.01) -> Calibration:
    """Fit a :class:`Calibration` (Newton's method, a little L2) on feature rows and whether
    each decoded phrase was the one said."""
    x = np.asarray(rows, dtype=np.float64)
    y = np.asarray(said, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0.0] = 1.0
    z = np.column_stack([np.ones(len(x)), (x - mean) / scale])
    w = np.zeros(z.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        gradient = z.T @ (p - y) + l2 * w
        hessian = (z.T * (p * (1.0 - p))) @ z + l2 * np.eye(len(w))
        w -= np.linalg.solve(hessian, gradient)
    return Calibration(
        mean=tuple(_digits(v) for v in mean),
        scale=tuple(_digits(v) for v in scale),
        weights=tuple(_digits(v) for v in w[1:]),
        bias=_digits(w[0]),
    )


def _digits(value: float) -> float:
    """``value`` to 5 significant digits (the scores per frame are ~1e-3: decimals would lose
    them)."""
    return float(f"{float(value):.5g}")


# Fitted on SETS[("en", "dev")] (all conditions, as rendered and through A-law with the live
# path's silences and click; trimmed by ivr.speech.cleanup to 400 ms of silence on each side;
# the decodes that ended on a choice, not on a rival) by benchmarks/calibrate_pocketsphinx.py --fit.
CALIBRATION = Calibration(
    mean=(-0.0031755, -0.0021502, 2.2282, -0.0027054, 0.42398, -0.0012679, 0.17802),
    scale=(0.0012304, 0.00088278, 0.34475, 0.00084011, 0.13074, 0.00095115, 0.24431),
    weights=(-4.8209, 9.1953, -0.89277, 2.7059, 2.4032, 0.56918, -0.95356),
    bias=-4.0504,
)
