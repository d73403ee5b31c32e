"""Turn a prompt's parts into channel operations, and read DTMF digits after a prompt."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping

from ivr.channel import DTMF_DIGITS, Channel, Prompt
from ivr.flow.model import PromptSpec, SayValue, Speech
from ivr.flow.prompts import tts_file


def to_prompt(part: Speech) -> Prompt:
    """A fixed speech part as the channel plays it."""
    if part.kind == "text":
        return Prompt("tts", tts_file(part.value, part.language), part.value, part.language)
    return Prompt(part.kind, part.value, f"[{part.kind} {part.value}]", part.language)


async def speak(
    channel: Channel,
    prompts: list[PromptSpec],
    variables: Mapping[str, str],
    language: str,
    escape_digits: str = "",
) -> str:
    """Say prompts in order; returns the escape digit that stopped them, or ``""``."""
    batch: list[Prompt] = []
    for spec in prompts:
        for part in spec.parts(language):
            if isinstance(part, Speech):
                batch.append(to_prompt(part))
                continue
            if batch:  # play queued files first so the order is kept
                digit = await channel.play(batch, escape_digits)
                batch = []
                if digit:
                    return digit
            digit = await say_value(channel, part, variables.get(part.variable, ""), escape_digits)
            if digit:
                return digit
    return await channel.play(batch, escape_digits) if batch else ""


async def say_value(channel: Channel, part: SayValue, value: str, escape: str) -> str:
    """Speak a variable's value in its format; values that don't fit are skipped."""
    match part.format:
        case "digits":
            digits = "".join(c for c in value if c in DTMF_DIGITS)
            return await channel.say_digits(digits, escape) if digits else ""
        case "number":
            number = _number(value)
            return await channel.say_number(int(number), escape) if number is not None else ""
        case "currency":
            number = _number(value)
            if number is None:
                return ""
            units, cents = divmod(round(abs(number) * 100), 100)
            digit = await channel.say_number(int(units), escape)
            if digit or not cents:
                return digit
            digit = await channel.play([Prompt("sound", "letters/dot", "point")], escape)
            return digit or await channel.say_digits(f"{cents:02d}", escape)
        case "date":
            try:
                day = dt.date.fromisoformat(value[:10])
            except ValueError:
                return ""
            epoch = int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp())
            return await channel.say_date(epoch, escape)
    return ""


def _number(value: str) -> float | None:
    try:
        return float(value.replace(",", ""))
    except ValueError:
        return None


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
