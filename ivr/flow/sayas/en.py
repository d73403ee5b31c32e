"""English: "one thousand two hundred and thirty four dollars and fifty cents".

British "and" (before the tens of each hundred, and before a last group under a hundred:
"one thousand and five"), which is also how the issue's example reads. Short scale
(million, billion, trillion, quadrillion).
"""

from __future__ import annotations

import datetime as dt

from ivr.flow.sayas.base import QueueWords, SayRules, words_of

# fmt: off
ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
# fmt: on
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion")
_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
KEYS = {**{str(d): ONES[d] for d in range(10)}, "*": "star", "#": "hash"}


def ordinal_word(word: str) -> str:
    """``"twenty"`` -> ``"twentieth"``, ``"one"`` -> ``"first"``."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("y"):
        return word[:-1] + "ieth"
    return word + "th"


class English(SayRules):
    language = "en"
    keys = KEYS
    minus = "minus"
    point = "point"
    unit = "dollars"
    fallback = "I am sorry. Please hold while I put you through to an agent."
    queue = QueueWords(
        position=("You are", "in line."),
        wait=("Your wait is about", "minute.", "minutes."),
        entered="You entered",
        confirm="If that is right, press",
        enter_number="Please enter the number to call you back on, then press hash.",
        sorry="Sorry, we cannot call you back on this line.",
    )

    @property
    def clips(self) -> frozenset[str]:
        cardinals = words_of(ONES, TENS, SCALES, ["hundred", "and"])
        return frozenset(
            {
                *self.fixed_clips(),
                *cardinals,
                *(ordinal_word(w) for w in cardinals - {"and"}),
                *("dollar", "dollars", "cent", "cents"),
                *MONTHS,
                *WEEKDAYS,
                *("oh", "o'clock", "a m", "p m"),
            }
        )

    def cardinal(self, n: int) -> list[str]:
        if n == 0:
            return ["zero"]
        groups: list[int] = []
        while n:
            n, group = divmod(n, 1000)
            groups.append(group)
        words: list[str] = []
        for scale in range(len(groups) - 1, -1, -1):
            group = groups[scale]
            if not group:
                continue
            if scale == 0 and group < 100 and words:
                words.append("and")  # "one thousand and five"
            words += _hundreds(group)
            if scale:
                words.append(SCALES[scale])
        return words

    def ordinal(self, n: int) -> list[str]:
        words = self.cardinal(n)
        return [*words[:-1], ordinal_word(words[-1])]

    def money(self, units: int, cents: int) -> list[str]:
        if not units and cents:
            return [*self.cardinal(cents), "cent" if cents == 1 else "cents"]
        words = [*self.cardinal(units), "dollar" if units == 1 else "dollars"]
        if cents:
            words += ["and", *self.cardinal(cents), "cent" if cents == 1 else "cents"]
        return words

    def date(self, day: dt.date) -> list[str]:
        """ "Monday, December seventh, twenty twenty six"."""
        return [
            WEEKDAYS[day.weekday()],
            MONTHS[day.month - 1],
            *self.ordinal(day.day),
            *self.year(day.year),
        ]

    def year(self, year: int) -> list[str]:
        """Years in pairs ("nineteen oh five", "twenty twenty six"), but "two thousand and
        five"; outside 1100-9999, a cardinal."""
        high, low = divmod(year, 100)
        if not 11 <= high <= 99 or (high % 10 == 0 and low < 10):
            return self.cardinal(year)
        if low == 0:
            return [*self.cardinal(high), "hundred"]
        return [*self.cardinal(high), *(["oh"] if low < 10 else []), *self.cardinal(low)]

    def time(self, at: dt.time) -> list[str]:
        """Twelve-hour clock: "nine o'clock a m", "three oh five p m"."""
        hour = at.hour % 12 or 12
        if at.minute == 0:
            minutes = ["o'clock"]
        elif at.minute < 10:
            minutes = ["oh", ONES[at.minute]]
        else:
            minutes = self.cardinal(at.minute)
        return [*self.cardinal(hour), *minutes, "a m" if at.hour < 12 else "p m"]


def _hundreds(n: int) -> list[str]:
    """``1 <= n <= 999``."""
    hundreds, rest = divmod(n, 100)
    words = [ONES[hundreds], "hundred"] if hundreds else []
    if hundreds and rest:
        words.append("and")
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words += [TENS[tens], *([ONES[ones]] if ones else [])]
    elif rest:
        words.append(ONES[rest])
    return words


RULES = English()
