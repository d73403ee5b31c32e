"""Mandarin (普通话): 万/亿 grouping, 零 and 两 the way they are said.

- Groups of four digits: 万 (10^4), 亿 (10^8), then 万亿 (10^12, 一万亿); 10^16 and more are
  read digit by digit (:data:`~ivr.flow.sayas.base.MAX_GROUPED`): 兆 means 10^6 to some
  listeners and 10^12 to others, and 亿亿 is not said.
- 零: one 零 for any run of zeros inside a number (1005 一千零五, 10005 一万零五,
  100001000 一亿零一千), none at the end (100 一百).
- 十 alone at the start (10 十, 15 十五, 100000 十万), 一十 inside (110 一百一十).
- 两 for a 2 before 百/千/万/亿 and for a lone 2 counted before a measure word (两百, 两千,
  两万, 两亿, 两元, 两分钟); 二 elsewhere (十二, 二十, 一百零二) and in ordinals (第二).
- Money in 元/角/分: the register of a bank (its statements and prompts say 元); 块/毛 is
  the spoken, informal one. 10.05 十元零五分, 1234.50 一千两百三十四元五角.
"""

from __future__ import annotations

import datetime as dt

from ivr.flow.sayas.base import QueueWords, SayRules

DIGITS = "零一二三四五六七八九"
LIANG = "两"
WEEKDAYS = "一二三四五六日"  # 星期一 ... 星期日
KEYS = {**{str(d): DIGITS[d] for d in range(10)}, "*": "星号", "#": "井号"}
# the part of the day said before the hour: (hours before which it applies, its name)
PERIODS = ((6, "凌晨"), (12, "上午"), (13, "中午"), (18, "下午"), (24, "晚上"))


class Mandarin(SayRules):
    language = "zh"
    keys = KEYS
    minus = "负"
    point = "点"
    unit = "元"
    fallback = "抱歉，请稍候，正在为您转接人工服务。"  # noqa: RUF001 (Chinese commas)
    queue = QueueWords(
        position=("您排在", "位。"),
        wait=("预计等待", "分钟。", "分钟。"),
        entered="您输入的号码是",
        confirm="确认请按",
        enter_number="请输入回电号码，以井号键结束。",  # noqa: RUF001 (Chinese commas)
        sorry="抱歉，无法回拨该号码。",  # noqa: RUF001
    )

    @property
    def clips(self) -> frozenset[str]:
        return frozenset(
            {
                *self.fixed_clips(),
                *DIGITS,
                LIANG,
                *"十百千万亿",
                *"元角分",
                *"第年月日点整",
                "星期",
                *(name for _, name in PERIODS),
            }
        )

    def cardinal(self, n: int) -> list[str]:
        return _number(n, liang=False)

    def count(self, n: int) -> list[str]:
        return _number(n, liang=True)

    def ordinal(self, n: int) -> list[str]:
        return ["第", *_number(n, liang=False)]

    def money(self, units: int, cents: int) -> list[str]:
        jiao, fen = divmod(cents, 10)
        words = [*self.count(units), "元"] if units or not cents else []
        if jiao:
            words += [*self.count(jiao), "角"]
        if fen:
            words += [*(["零"] if units and not jiao else []), *self.count(fen), "分"]
        return words

    def date(self, day: dt.date) -> list[str]:
        """二零二六年十二月七日星期一: the year digit by digit, month and day as numbers."""
        return [
            *self.spell(str(day.year)),
            "年",
            *self.cardinal(day.month),
            "月",
            *self.cardinal(day.day),
            "日",
            "星期",
            WEEKDAYS[day.weekday()],
        ]

    def time(self, at: dt.time) -> list[str]:
        """下午三点零五分, 上午九点整, 凌晨两点: the part of the day, then a 12-hour clock."""
        period = next(name for end, name in PERIODS if at.hour < end)
        hour = at.hour % 12 or 12
        if at.minute == 0:
            minutes = ["整"]
        else:
            minutes = [*(["零"] if at.minute < 10 else []), *self.cardinal(at.minute), "分"]
        return [period, *self.count(hour), "点", *minutes]


def _number(n: int, *, liang: bool) -> list[str]:
    """``0 <= n < 10^16``; ``liang``: a lone 2 is counted (两), not named (二)."""
    if n == 0:
        return [DIGITS[0]]
    return _grouped(n, liang=liang, leading=True)


def _grouped(n: int, *, liang: bool, leading: bool) -> list[str]:
    """``1 <= n < 10^16``, split at 亿, then at 万 (so 10^12 is 一万亿), with one 零 when the
    lower part's top digit is a zero (10005 一万零五, 100010000 一亿零一万)."""
    for size, unit in ((10**8, "亿"), (10**4, "万")):
        if n >= size:
            high, low = divmod(n, size)
            words = [*_grouped(high, liang=True, leading=leading), unit]  # 两万, 两亿
            if low:
                words += ["零"] if low < size // 10 else []
                words += _grouped(low, liang=liang, leading=False)
            return words
    return _four(n, liang=liang, leading=leading)


def _four(n: int, *, liang: bool, leading: bool) -> list[str]:
    """``1 <= n <= 9999``: 两 before 千/百 (and alone when ``liang``), 零 for inner zeros, no
    一 before a leading 十."""
    if n == 2 and liang:
        return [LIANG]
    words: list[str] = []
    zero = False
    for power, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // power % 10
        if not digit:
            zero = zero or bool(words)
            continue
        if zero:
            words.append("零")
            zero = False
        if digit == 2 and unit in ("千", "百"):
            words.append(LIANG)
        elif not (digit == 1 and unit == "十" and leading and not words):
            words.append(DIGITS[digit])
        if unit:
            words.append(unit)
    return words


RULES = Mandarin()
