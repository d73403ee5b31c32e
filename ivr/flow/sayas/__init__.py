"""Say-as: a variable's value as words in the call's language, each word one rendered clip.

``{balance:currency}`` in a Mandarin prompt becomes ``一千两百三十四元五角``: the language's
rules (:mod:`.en`, :mod:`.zh`) give the words, :func:`clip_file` names each word's recording
(rendered at start-up by :mod:`ivr.prompts.tts`), and the runtime plays them in a row. A
language without rules is said by Asterisk (``SAY NUMBER``...) as before.

Adding a language: a module with a :class:`~ivr.flow.sayas.base.SayRules` subclass and its
``RULES``, listed in :data:`RULES` below, and an espeak-ng voice for it
(``ivr.prompts.tts.VOICES``).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ivr.flow.model_values import SayFormat
from ivr.flow.prompts import tts_file
from ivr.flow.sayas import en, zh
from ivr.flow.sayas.base import SayRules

__all__ = ["RULES", "SayRules", "clip_file", "rules_for", "spoken"]

RULES: dict[str, SayRules] = {"en": en.RULES, "zh": zh.RULES, "cmn": zh.RULES}
# A value with more whole digits than this is not said at all (a back office's garbage,
# 1e400); within it, rounding to the cent stays exact in decimal's default 28 digits.
MAX_DIGITS = 20
MAX_DECIMALS = 6  # a number's decimals beyond this are rounded away
CENT = Decimal("0.01")


def rules_for(language: str) -> SayRules | None:
    """The rules of ``language`` (``zh``, ``zh-CN`` and ``cmn`` are Mandarin); None without."""
    found = RULES.get(language)
    if found is None:
        found = RULES.get(language.replace("_", "-").split("-")[0].lower())
    return found


def clip_file(word: str, language: str) -> str:
    """Sound name (relative to ``prompts/``) of one say-as word's rendering: ``say/<lang>/..``.

    Apart from the text prompts' ``tts/`` so the transport can keep them out of its log: the
    words of an account number read back would spell it out there."""
    return "say/" + tts_file(word, language).removeprefix("tts/")


def spoken(rules: SayRules, fmt: SayFormat, value: str) -> list[str] | None:
    """The words of ``value`` said as ``fmt``; None when it cannot be said that way."""
    if fmt == "digits":
        return rules.spell(value)
    if fmt == "date":
        try:
            return rules.date(dt.date.fromisoformat(value[:10]))
        except ValueError:
            return None
    number = _decimal(value)
    if number is None:
        return None
    if fmt == "number":
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
            number = number.quantize(Decimal(1).scaleb(-MAX_DECIMALS), ROUND_HALF_UP)
        return rules.number(number)
    units, cents = divmod(int(abs(number).quantize(CENT, ROUND_HALF_UP) * 100), 100)
    return rules.currency(units, cents, negative=number < 0)


def _decimal(value: str) -> Decimal | None:
    """``value`` as a finite number of at most :data:`MAX_DIGITS` whole digits (commas, as in
    ``1,234.50``, are dropped)."""
    try:
        number = Decimal(value.strip().replace(",", ""))
    except InvalidOperation:
        return None
    if not number.is_finite() or number.adjusted() >= MAX_DIGITS:
        return None
    return number
