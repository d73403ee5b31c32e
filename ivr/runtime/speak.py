"""Turn a prompt's parts into channel operations, and read DTMF digits after a prompt."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Mapping

from ivr.call.channel import DTMF_DIGITS, Channel, Prompt
from ivr.flow.model_values import PromptSpec, SayValue, Speech
from ivr.flow.prompts import tts_file
from ivr.flow.sayas import SayRules, clip_file, rules_for, spoken

log = logging.getLogger("ivr.call")

# SAY NUMBER goes up to 999,999,999 (Asterisk's English says -1, "too big for me", beyond:
# the AGI reads that as a hang-up). Larger amounts are skipped rather than end the call.
MAX_SAY_NUMBER = 999_999_999
# SAY DIGITS takes [0-9] only; these keys are said with the sounds Asterisk itself uses.
KEY_SOUNDS = {
    "*": Prompt("sound", "digits/star", "star"),
    "#": Prompt("sound", "digits/pound", "pound"),
}


def to_prompt(part: Speech) -> Prompt:
    """A fixed speech part as the channel plays it."""
    if part.kind == "text":
        return Prompt("tts", tts_file(part.value, part.language), part.value, part.language)
    return Prompt(part.kind, part.value, f"[{part.kind} {part.value}]", part.language)


def clips(words: list[str], language: str) -> list[Prompt]:
    """Say-as words as the clips rendered for ``language`` (:mod:`ivr.flow.sayas`)."""
    return [Prompt("tts", clip_file(w, language), w, language) for w in words]


async def set_language(channel: Channel, language: str) -> None:
    """``CHANNEL(language)``: Asterisk's own sounds and ``SAY`` commands follow the call."""
    await channel.set_variable("CHANNEL(language)", language)


async def speak(
    channel: Channel,
    prompts: list[PromptSpec],
    variables: Mapping[str, str],
    language: str,
    escape_digits: str = "",
) -> str:
    """Say prompts in order; returns the escape digit that stopped them, or ``""``.

    In a language with say-as rules the values go into the same batch as the text around
    them (their clips); otherwise each value is said by Asterisk between batches."""
    rules = rules_for(language)
    batch: list[Prompt] = []
    for spec in prompts:
        for part in spec.parts(language):
            if isinstance(part, Speech):
                batch.append(to_prompt(part))
                continue
            value = variables.get(part.variable, "")
            if rules is not None:
                batch += _clips_of(channel, rules, part, value, language)
                continue
            if batch:  # play queued files first so the order is kept
                digit = await channel.play(batch, escape_digits)
                batch = []
                if digit:
                    return digit
            digit = await _say_by_asterisk(channel, part, value, language, escape_digits)
            if digit:
                return digit
    return await channel.play(batch, escape_digits) if batch else ""


async def say_value(
    channel: Channel, part: SayValue, value: str, escape: str, language: str
) -> str:
    """Speak a variable's value in its format; values that don't fit are skipped (logged)."""
    rules = rules_for(language)
    if rules is None:
        return await _say_by_asterisk(channel, part, value, language, escape)
    batch = _clips_of(channel, rules, part, value, language)
    return await channel.play(batch, escape) if batch else ""


def _clips_of(
    channel: Channel, rules: SayRules, part: SayValue, value: str, language: str
) -> list[Prompt]:
    words = spoken(rules, part.format, value)
    if words is None:
        _skip(channel, part, value)
        return []
    return clips(words, language)


async def _say_by_asterisk(
    channel: Channel, part: SayValue, value: str, language: str, escape: str
) -> str:
    """A language without say-as rules: Asterisk's ``SAY`` commands in the call's language
    (its own sounds for it, when installed)."""
    await set_language(channel, language)
    match part.format:
        case "digits":
            return await _say_keys(channel, value, escape)
        case "number":
            number = _whole(value)
            if number is None:
                return _skip(channel, part, value)
            return await channel.say_number(number, escape)
        case "currency":
            amount = _amount(value)
            if amount is None:
                return _skip(channel, part, value)
            return await _say_currency(channel, *amount, escape)
        case "date":
            try:
                day = dt.date.fromisoformat(value[:10])
            except ValueError:
                return _skip(channel, part, value)
            epoch = int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp())
            return await channel.say_date(epoch, escape)
    return ""


async def _say_keys(channel: Channel, value: str, escape: str) -> str:
    """Runs of 0-9 with SAY DIGITS, ``*``/``#`` as sounds (``*67555``); other characters are
    not keys and are left out."""
    keys = [c for c in value if c in DTMF_DIGITS]
    for is_digit, run in itertools.groupby(keys, key=str.isdigit):
        text = "".join(run)
        if is_digit:
            digit = await channel.say_digits(text, escape)
        else:
            digit = await channel.play([KEY_SOUNDS[c] for c in text], escape)
        if digit:
            return digit
    return ""


async def _say_currency(channel: Channel, units: int, cents: int, escape: str) -> str:
    digit = await channel.say_number(units, escape)
    if digit or not cents:
        return digit
    digit = await channel.play([Prompt("sound", "letters/dot", "point")], escape)
    return digit or await channel.say_digits(f"{cents:02d}", escape)


def _finite(value: str) -> float | None:
    """``value`` as a number SAY NUMBER can take (a back office may send ``Infinity``)."""
    try:
        number = float(value.replace(",", ""))
    except ValueError:
        return None
    return number if math.isfinite(number) and abs(number) < MAX_SAY_NUMBER + 1 else None


def _whole(value: str) -> int | None:
    number = _finite(value)
    return None if number is None else int(number)


def _amount(value: str) -> tuple[int, int] | None:
    """``(units, cents)``, rounded to the cent, when the units can be said."""
    number = _finite(value)
    if number is None:
        return None
    units, cents = divmod(round(abs(number) * 100), 100)
    return (units, cents) if units <= MAX_SAY_NUMBER else None


def _skip(channel: Channel, part: SayValue, value: str) -> str:
    """Say nothing for this value, and log it with the call (an unset variable is quiet)."""
    if value:
        shown = value if len(value) <= 40 else value[:37] + "..."
        log.warning(
            "not saying {%s:%s}: %r cannot be said that way",
            part.variable,
            part.format,
            shown,
            extra={"uniqueid": channel.info.uniqueid},
        )
    return ""


async def read_digits(
    channel: Channel,
    play: Callable[[str], Awaitable[str]],
    *,
    max_digits: int,
    timeout_s: float,
    inter_digit_timeout_s: float,
    terminator: str,
    complete: Callable[[str], bool] = lambda _: False,
) -> str:
    """Play (interruptible by any key), then read up to ``max_digits`` digits.

    The first digit may interrupt the prompt; then ``timeout_s`` for the first digit and
    ``inter_digit_timeout_s`` between digits. The terminator ends input early and is not
    returned; ``complete(digits)`` ends it as soon as the input is unambiguous. Callers type
    "8 digits then #" even when 8 is the maximum: after the maximum, a terminator is still
    awaited briefly and swallowed, and one more digit is returned (so the input is too long).
    """
    first = await play(DTMF_DIGITS)
    digit = first or await channel.wait_for_digit(timeout_s)
    digits = ""
    while digit:
        if terminator and digit == terminator:
            break
        digits += digit
        if complete(digits):
            break
        if len(digits) >= max_digits:
            if terminator:
                extra = await channel.wait_for_digit(inter_digit_timeout_s)
                digits += "" if extra == terminator else extra
            break
        digit = await channel.wait_for_digit(inter_digit_timeout_s)
    return digits
