"""Accept, confirm or reject what a recogniser heard: the one rule every speech menu uses.

A choice the engine is sure of is taken; one it is unsure of is confirmed with the caller
("Did you say lost card?"); anything else, including speech that named no choice, runs the
menu's no-match path. The thresholds are the engine's calibrated defaults unless the menu sets
its own (``min_confidence``, ``accept_confidence``); ``confirm`` (``auto``, ``always``,
``never``) says whether the middle band asks the caller.
"""

from __future__ import annotations

from typing import Literal

from ivr.speech.base import Recognition, Thresholds

Verdict = Literal["accept", "confirm", "reject"]
CONFIRM_MODES = ("auto", "always", "never")


def thresholds_for(
    engine_default: Thresholds,
    min_confidence: float | None = None,
    accept_confidence: float | None = None,
) -> Thresholds:
    """The engine's thresholds with a menu's overrides; an override that crosses the other
    threshold moves it along (a menu's ``min_confidence: 0.9`` also accepts only from 0.9)."""
    reject = engine_default.reject_below if min_confidence is None else min_confidence
    accept = engine_default.accept_at if accept_confidence is None else accept_confidence
    if min_confidence is not None and accept_confidence is None:
        accept = max(accept, reject)
    if accept_confidence is not None and min_confidence is None:
        reject = min(reject, accept)
    return Thresholds(reject, accept)


def decide(recognition: Recognition, thresholds: Thresholds, confirm: str = "auto") -> Verdict:
    """What a menu does with ``recognition``.

    >>> heard = Recognition("lost card", "2", 0.5, "pocketsphinx")
    >>> decide(heard, Thresholds(0.3, 0.7)), decide(heard, Thresholds(0.3, 0.4))
    ('confirm', 'accept')
    >>> decide(heard, Thresholds(0.6, 0.7)), decide(heard, Thresholds(0.3, 0.7), "never")
    ('reject', 'accept')
    """
    if confirm not in CONFIRM_MODES:
        raise ValueError(f"confirm must be one of {', '.join(CONFIRM_MODES)}, not {confirm!r}")
    if recognition.choice is None or recognition.confidence < thresholds.reject_below:
        return "reject"
    if confirm == "always":
        return "confirm"
    if confirm == "never" or recognition.confidence >= thresholds.accept_at:
        return "accept"
    return "confirm"
