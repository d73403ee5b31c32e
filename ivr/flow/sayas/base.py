"""What every language's say-as rules provide, and the parts they share.

A language's rules turn a value into words: each word is one clip, rendered once per language
by the project's TTS (:mod:`ivr.prompts.tts`) and played in a row. The rules are pure: no
files, no clock, no channel. :attr:`SayRules.clips` lists every word they can produce, so
start-up renders exactly that set and a test checks no output falls outside it.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

# Whole parts up to this are said as numbers in every language (English "quadrillion",
# Mandarin 万亿); larger ones are read digit by digit, like a reference number.
MAX_GROUPED = 10**16 - 1


@dataclass(frozen=True)
class QueueWords:
    """The sentences around the numbers the queue and the callback read-back say."""

    position: tuple[str, str]  # said around the caller's place in line (an ordinal)
    wait: tuple[str, str, str]  # before the minutes; the unit for one, for more
    entered: str  # "you entered", before the number read back
    confirm: str  # "if that is right, press", before the key
    enter_number: str  # asks for another number, ending with the hash key
    sorry: str  # no callback on this line


class SayRules(ABC):
    """One language's way of saying values. Subclasses fill the word tables."""

    language: str
    keys: dict[str, str]  # "0"-"9", "*", "#" -> word
    minus: str
    point: str
    unit: str  # the currency's name after a whole amount read digit by digit
    queue: QueueWords
    # What the dialplan says before the default queue when the IVR could not finish a call
    # (extensions.conf plays prompts/fallback/<language>, rendered at start-up).
    fallback: str

    @property
    @abstractmethod
    def clips(self) -> frozenset[str]:
        """Every word these rules can produce (each is one rendered clip)."""

    @abstractmethod
    def cardinal(self, n: int) -> list[str]:
        """A whole number ``0 <= n <= MAX_GROUPED``."""

    @abstractmethod
    def ordinal(self, n: int) -> list[str]:
        """A place, ``1 <= n <= MAX_GROUPED`` (first, 第一)."""

    @abstractmethod
    def money(self, units: int, cents: int) -> list[str]:
        """A non-negative amount in the currency's units and hundredths."""

    @abstractmethod
    def date(self, day: dt.date) -> list[str]:
        """A calendar date, with its weekday."""

    @abstractmethod
    def time(self, at: dt.time) -> list[str]:
        """A time of day (hours and minutes)."""

    def count(self, n: int) -> list[str]:
        """A quantity before a measure word (Mandarin says 两 here); a cardinal by default."""
        return self.cardinal(n)

    def spell(self, text: str) -> list[str]:
        """Keys one by one (``0``-``9``, ``*``, ``#``); other characters are left out."""
        return [self.keys[c] for c in text if c in self.keys]

    def whole(self, n: int, *, quantity: bool = False) -> list[str]:
        """Any whole number: signed, read digit by digit beyond :data:`MAX_GROUPED`."""
        sign = [self.minus] if n < 0 else []
        n = abs(n)
        if n > MAX_GROUPED:
            return sign + self.spell(str(n))
        return sign + (self.count(n) if quantity else self.cardinal(n))

    def number(self, value: Decimal) -> list[str]:
        """A decimal number as written: the whole part, then each decimal digit."""
        sign, digits, exponent = value.normalize().as_tuple()
        assert isinstance(exponent, int)  # finite: the caller checked
        whole = int(abs(value))
        # a whole, non-negative value is a count (Mandarin 两); a decimal or a negative is not
        words = self.whole(-whole if sign else whole, quantity=exponent >= 0 and not sign)
        if sign and not whole and value:  # -0.5
            words = [self.minus, *words]
        if exponent < 0:
            decimals = "".join(map(str, digits))[exponent:].rjust(-exponent, "0")
            words += [self.point, *self.spell(decimals)]
        return words

    def currency(self, units: int, cents: int, negative: bool = False) -> list[str]:
        """An amount rounded to the cent; beyond :data:`MAX_GROUPED` units, the units are
        read digit by digit and the cents left out."""
        sign = [self.minus] if negative and (units or cents) else []
        if units > MAX_GROUPED:
            return [*sign, *self.spell(str(units)), self.unit]
        return sign + self.money(units, cents)

    def queue_position(self, position: int) -> list[str]:
        before, after = self.queue.position
        return [before, *self.ordinal(position), after]

    def queue_wait(self, minutes: int) -> list[str]:
        before, one, more = self.queue.wait
        return [before, *self.count(minutes), one if minutes == 1 else more]

    def read_back(self, number: str) -> list[str]:
        """ "You entered <digits>. If that is right, press 1." """
        return [self.queue.entered, *self.spell(number), self.queue.confirm, self.keys["1"]]

    def fixed_clips(self) -> set[str]:
        """The words every language's tables share the shape of."""
        q = self.queue
        return {
            *self.keys.values(),
            self.minus,
            self.point,
            self.unit,
            *q.position,
            *q.wait,
            q.entered,
            q.confirm,
            q.enter_number,
            q.sorry,
        }


def words_of(*tables: Iterable[str]) -> set[str]:
    """The non-empty words of several tables."""
    return {w for table in tables for w in table if w}
