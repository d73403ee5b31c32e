"""What a recogniser heard, mapped to the menu choice it sounds most like, with a confidence.

A recogniser that cannot say "none of these" (a Vosk model without an ``[unk]`` word) gives
candidate texts: the n-best readings of one or more decodes. Each reading is compared with
every phrase of every choice by how alike they sound (:func:`ivr.speech.jamo.similarity`:
Hangul by phoneme, other text by character after :func:`ivr.speech.grammar.normalise`). A
choice's score in one decode is its best similarity over that decode's readings; its score
overall is the mean over the decodes, so a choice must sound right in each of them.

The winner's score (and its margin over the runner-up) become a confidence in 0..1 through a
logistic curve fitted on the generated development set (``benchmarks/calibrate_vosk.py``):
speech that is no choice sounds only roughly like one, and differently in each decode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.speech import grammar
from ivr.speech.base import SpeechChoice
from ivr.speech.jamo import similarity

# P(the choice is right) = 1 / (1 + exp(-(BIAS + W_SCORE * score + W_MARGIN * margin))),
# fitted on the Korean dev set by benchmarks/calibrate_vosk.py (--fit prints these). Fitted
# with the margin, its weight came out at or below zero (-0.6 .. -1.2 over runs) once the
# score is known, so the curve is fitted on the score alone; the margin stays in the formula
# (and in Nearest) for models where it helps.
BIAS = -3.95
W_SCORE = 6.5
W_MARGIN = 0.0


@dataclass(frozen=True, slots=True)
class Nearest:
    """The choice the readings sound most like: its key (``None`` when nothing was heard),
    the phrase and reading that matched best, its score (0..1), and its margin over the best
    other choice."""

    key: str | None
    phrase: str
    reading: str
    score: float
    margin: float

    @property
    def confidence(self) -> float:
        """How likely the choice is right, 0..1 (calibrated; 0 when nothing was heard)."""
        return confidence(self.score, self.margin) if self.key is not None else 0.0


def confidence(score: float, margin: float) -> float:
    """The calibrated confidence of a choice with this score and margin.

    >>> confidence(1.0, 0.5) > 0.9 > 0.2 > confidence(0.3, 0.05)
    True
    """
    z = BIAS + W_SCORE * score + W_MARGIN * margin
    return 1.0 / (1.0 + math.exp(-z))


def nearest(
    decodes: Sequence[Sequence[str]], choices: Sequence[SpeechChoice], language: str
) -> Nearest:
    """The choice ``decodes`` (each a list of readings, best first) sound most like.

    >>> menu = [SpeechChoice("1", ("잔액",)), SpeechChoice("7", ("아니오",))]
    >>> best = nearest([["자 내"], ["자낵", "아"]], menu, "ko")
    >>> best.key, best.phrase, best.score
    ('1', '잔액', 0.9375)
    >>> nearest([[""]], menu, "ko").key is None
    True
    """
    phrases = [(grammar.normalise(p, language), c.key) for c in choices for p in c.phrases]
    phrases = [(p, k) for p, k in phrases if p]
    keys = list(dict.fromkeys(k for _, k in phrases))
    total = dict.fromkeys(keys, 0.0)
    best_of: dict[str, tuple[float, str, str]] = {}  # key -> (similarity, phrase, reading)
    heard = False
    for readings in decodes:
        in_decode = dict.fromkeys(keys, 0.0)
        for reading in readings:
            text = grammar.normalise(reading, language)
            if not text:
                continue
            heard = True
            for phrase, key in phrases:
                alike = similarity(text, phrase)
                in_decode[key] = max(in_decode[key], alike)
                if alike > best_of.get(key, (-1.0, "", ""))[0]:
                    best_of[key] = (alike, phrase, text)
        for key in keys:
            total[key] += in_decode[key] / max(len(decodes), 1)
    if not heard or not keys:
        return Nearest(None, "", "", 0.0, 0.0)
    ranked = sorted(keys, key=lambda k: -total[k])
    first = ranked[0]
    second = total[ranked[1]] if len(ranked) > 1 else 0.0
    _, phrase, reading = best_of.get(first, (0.0, "", ""))
    return Nearest(first, phrase, reading, round(total[first], 4), round(total[first] - second, 4))
