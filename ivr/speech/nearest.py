"""What a recogniser heard, mapped to the menu choice it sounds most like, with a confidence.

A recogniser that cannot say "none of these" (a Vosk model without an ``[unk]`` word) gives
candidate texts: the n-best readings of one or more decodes, each with its share of the
decode's posterior (:class:`Reading`). Each reading is compared with every phrase of every
choice by how alike they sound (:func:`ivr.speech.jamo.similarity`: Hangul by phoneme, other
text by character after :func:`ivr.speech.grammar.normalise`). A choice's score in one decode
is its best similarity over that decode's readings; its score overall is the mean over the
decodes, so a choice must sound right in each of them. The best-scoring choice wins (of
two that score the same, the one more readings pick).

How sure that is (:class:`Evidence`, all 0..1): the winner's **score**; its **agreement**,
the posterior share of the readings whose own nearest choice it is (mean over the decodes);
its **margin** over the runner-up's score; and the **length** of what was heard (sounds of the
first decode's best reading, over 10, capped), since speech that is no choice is often longer
than any choice. A logistic curve over them (:data:`CURVE`, fitted on the Korean dev and
calibration sets by ``benchmarks/calibrate_vosk.py --fit``) makes the confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass

from ivr.speech import grammar
from ivr.speech.base import SpeechChoice
from ivr.speech.jamo import phonemes, similarity

LONG_HEARD = 10  # sounds: a reading this long (or longer) has length 1.0


@dataclass(frozen=True, slots=True)
class Reading:
    """One candidate text of a decode and its share of the decode's posterior (0..1)."""

    text: str
    weight: float


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the confidence is computed from (each 0..1; see the module's doc)."""

    score: float
    agreement: float
    margin: float
    length: float


@dataclass(frozen=True, slots=True)
class Curve:
    """P(the choice is right) = 1 / (1 + exp(-(bias + w . evidence)))."""

    bias: float
    score: float
    agreement: float
    margin: float
    length: float

    def __call__(self, evidence: Evidence) -> float:
        weights = astuple(self)[1:]
        z = self.bias + sum(w * x for w, x in zip(weights, astuple(evidence), strict=True))
        return 1.0 / (1.0 + math.exp(-z))


# Fitted by benchmarks/calibrate_vosk.py --fit on the Korean dev + calibration sets (810
# utterances, the engine's two-tempo decode). The length weighs against: long readings are
# mostly speech that is no choice.
CURVE = Curve(bias=-4.02, score=4.88, agreement=2.71, margin=0.98, length=-2.45)


@dataclass(frozen=True, slots=True)
class Nearest:
    """The choice the readings sound most like: its key (``None`` when nothing was heard),
    the phrase and reading that matched best, and the evidence for it."""

    key: str | None
    phrase: str
    reading: str
    evidence: Evidence

    @property
    def score(self) -> float:
        """The winner's similarity, 0..1 (mean over the decodes of its best reading's)."""
        return self.evidence.score

    @property
    def confidence(self) -> float:
        """How likely the choice is right, 0..1 (calibrated; 0 when nothing was heard)."""
        return CURVE(self.evidence) if self.key is not None else 0.0


NOTHING = Nearest(None, "", "", Evidence(0.0, 0.0, 0.0, 0.0))


def posteriors(scores: Sequence[float]) -> list[float]:
    """Each n-best reading's share, from the decoder's scores (log-likelihoods, best first).

    >>> [round(p, 3) for p in posteriors([10.0, 10.0, 9.0])]
    [0.422, 0.422, 0.155]
    """
    if not scores:
        return []
    top = max(scores)
    raw = [math.exp(s - top) for s in scores]
    return [r / sum(raw) for r in raw]


def nearest(
    decodes: Sequence[Sequence[Reading]], choices: Sequence[SpeechChoice], language: str
) -> Nearest:
    """The choice ``decodes`` (each a list of readings, best first) sound most like.

    >>> menu = [SpeechChoice("1", ("잔액",)), SpeechChoice("7", ("아니오",))]
    >>> best = nearest([[Reading("자 내", 1.0)], [Reading("자낵", .5), Reading("오", .5)]],
    ...                menu, "ko")
    >>> best.key, best.phrase, best.score, best.evidence.agreement
    ('1', '잔액', 0.9375, 0.75)
    >>> nearest([[Reading("", 1.0)]], menu, "ko").key is None
    True
    """
    phrases = [(grammar.normalise(p, language), c.key) for c in choices for p in c.phrases]
    phrases = [(p, k) for p, k in phrases if p]
    keys = list(dict.fromkeys(k for _, k in phrases))
    if not keys:
        return NOTHING
    total = dict.fromkeys(keys, 0.0)
    votes = dict.fromkeys(keys, 0.0)
    best_of: dict[str, tuple[float, str, str]] = {}  # key -> (similarity, phrase, reading)
    first_heard = ""
    share = 1.0 / max(len(decodes), 1)
    for readings in decodes:
        in_decode = dict.fromkeys(keys, 0.0)
        for reading in readings:
            text = grammar.normalise(reading.text, language)
            if not text:
                continue
            first_heard = first_heard or text
            alike = {key: 0.0 for key in keys}
            for phrase, key in phrases:
                value = similarity(text, phrase)
                alike[key] = max(alike[key], value)
                if value > best_of.get(key, (-1.0, "", ""))[0]:
                    best_of[key] = (value, phrase, text)
            for key in keys:
                in_decode[key] = max(in_decode[key], alike[key])
            votes[max(keys, key=lambda k: alike[k])] += reading.weight * share
        for key in keys:
            total[key] += in_decode[key] * share
    if not first_heard:
        return NOTHING
    ranked = sorted(keys, key=lambda k: (-total[k], -votes[k]))  # a tie: the likelier one
    first = ranked[0]
    second = total[ranked[1]] if len(ranked) > 1 else 0.0
    _, phrase, heard = best_of.get(first, (0.0, "", ""))
    evidence = Evidence(
        score=round(total[first], 4),
        agreement=round(min(votes[first], 1.0), 4),
        margin=round(total[first] - second, 4),
        length=min(len(phonemes(first_heard)), LONG_HEARD) / LONG_HEARD,
    )
    return Nearest(first, phrase, heard, evidence)
