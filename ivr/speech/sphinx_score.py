"""How sure pocketsphinx is that the menu phrase it decoded was said: a calibrated confidence.

A grammar decode forces every sound onto a menu phrase, so its text alone cannot tell "lost
card" from "pizza delivery please". The decode's own scores can: pocketsphinx normalises each
frame's acoustic scores by that frame's best senone, so a word's acoustic score per frame is
already a log-likelihood ratio against an unconstrained decode (a phone-loop decode of the same
audio scored ~0 per frame and added nothing, measured). Out-of-grammar speech forced onto a
phrase scores poorly per frame, often leaves speech in the "silences" around it, and stretches
or squeezes the phrase's phones.

:func:`features` turns one decode into those measures; :class:`Calibration` maps them to 0..1
with a logistic model fitted on the generated development set
(``benchmarks/calibrate_pocketsphinx.py``, which also prints the fitted numbers below).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_LN_FLOOR = -745.0  # ln of the smallest double: pocketsphinx's Python API returns exp(score)
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
    """A grammar decode: its text, segments, frame count, posterior and the number of phones
    of its words (from the dictionary)."""

    text: str
    segments: tuple[Segment, ...]
    frames: int
    posterior: float
    phones: int


def log_score(linear: float) -> float:
    """The natural log of a score the Python API returned as ``exp(score)`` (0 when it
    underflowed: the worst score there is)."""
    return math.log(linear) if linear > 0.0 else _LN_FLOOR


FEATURES = (
    "word_score",  # acoustic score per frame over the phrase's words
    "utterance_score",  # acoustic score per frame over the whole utterance
    "log_frames_per_phone",  # how stretched or squeezed the phrase is
    "log_posterior",  # the lattice posterior of the hypothesis
    "speech_share",  # share of the frames taken by words
    "pause_score",  # acoustic score per frame of the silences (speech left over scores badly)
)


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
        math.log(max(decoded.posterior, 1e-6)),
        speech / decoded.frames,
        sum(s.log_ascore for s in pauses) / pause_frames if pause_frames else 0.0,
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
        mean=tuple(round(float(v), 4) for v in mean),
        scale=tuple(round(float(v), 4) for v in scale),
        weights=tuple(round(float(v), 4) for v in w[1:]),
        bias=round(float(w[0]), 4),
    )


# Fitted on SETS[("en", "dev")] (all conditions) by benchmarks/calibrate_pocketsphinx.py --fit.
CALIBRATION = Calibration(
    mean=(-4.4812, -3.1441, 2.2893, -2.75, 0.3402, -2.43),
    scale=(1.4335, 0.7392, 0.4, 0.388, 0.1203, 0.6904),
    weights=(-0.0132, 3.954, -0.8896, 1.4583, 1.2462, -0.6445),
    bias=-1.2185,
)
