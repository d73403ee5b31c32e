"""Say-as rules: values -> words, per language (pure tables; no audio, no channel)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from ivr.flow.sayas import MAX_DIGITS, clip_file, rules_for, spoken
from ivr.flow.sayas.base import MAX_GROUPED, SayRules
from ivr.flow.sayas.en import RULES as EN
from ivr.flow.sayas.zh import RULES as ZH


def en(fmt: str, value: str) -> str | None:
    words = spoken(EN, fmt, value)  # type: ignore[arg-type]
    return None if words is None else " ".join(words)


def zh(fmt: str, value: str) -> str | None:
    words = spoken(ZH, fmt, value)  # type: ignore[arg-type]
    return None if words is None else "".join(words)


NUMBERS = [
    # value, English, Mandarin
    ("0", "zero", "零"),
    ("7", "seven", "七"),
    ("10", "ten", "十"),
    ("15", "fifteen", "十五"),
    ("2", "two", "两"),  # a count: 两 (两分钟)
    ("12", "twelve", "十二"),
    ("20", "twenty", "二十"),
    ("22", "twenty two", "二十二"),
    ("100", "one hundred", "一百"),
    ("102", "one hundred and two", "一百零二"),
    ("110", "one hundred and ten", "一百一十"),
    ("200", "two hundred", "两百"),
    ("1005", "one thousand and five", "一千零五"),
    ("1234", "one thousand two hundred and thirty four", "一千两百三十四"),
    ("2000", "two thousand", "两千"),
    ("2002", "two thousand and two", "两千零二"),
    ("10000", "ten thousand", "一万"),
    ("10005", "ten thousand and five", "一万零五"),
    ("20000", "twenty thousand", "两万"),
    ("22000", "twenty two thousand", "两万两千"),
    ("100000", "one hundred thousand", "十万"),
    ("100010", "one hundred thousand and ten", "十万零一十"),
    ("120000", "one hundred and twenty thousand", "十二万"),
    ("1000000", "one million", "一百万"),
    ("100000000", "one hundred million", "一亿"),
    ("100000001", "one hundred million and one", "一亿零一"),
    ("100001000", "one hundred million one thousand", "一亿零一千"),
    ("101000000", "one hundred and one million", "一亿零一百万"),
    ("110000001", "one hundred and ten million and one", "一亿一千万零一"),
    ("200000000", "two hundred million", "两亿"),
    ("1000000000", "one billion", "十亿"),
    ("1000000000000", "one trillion", "一万亿"),
    ("1000100000000", "one trillion one hundred million", "一万零一亿"),
    ("-12", "minus twelve", "负十二"),
    ("-2", "minus two", "负二"),
    ("3.14", "three point one four", "三点一四"),
    ("2.5", "two point five", "二点五"),  # a decimal is named, not counted
    ("10.05", "ten point zero five", "十点零五"),
    ("0.5", "zero point five", "零点五"),
    ("-0.5", "minus zero point five", "负零点五"),
    ("1234.50", "one thousand two hundred and thirty four point five", "一千两百三十四点五"),
    ("1,234", "one thousand two hundred and thirty four", "一千两百三十四"),
    ("1e3", "one thousand", "一千"),
    ("-0", "zero", "零"),
]


@pytest.mark.parametrize(("value", "english", "mandarin"), NUMBERS)
def test_numbers(value: str, english: str, mandarin: str) -> None:
    assert en("number", value) == english
    assert zh("number", value) == mandarin


CURRENCY = [
    (
        "1234.50",
        "one thousand two hundred and thirty four dollars and fifty cents",
        "一千两百三十四元五角",
    ),
    (
        "1234.5",
        "one thousand two hundred and thirty four dollars and fifty cents",
        "一千两百三十四元五角",
    ),
    ("0", "zero dollars", "零元"),
    ("1", "one dollar", "一元"),
    ("2", "two dollars", "两元"),
    ("10", "ten dollars", "十元"),
    ("100", "one hundred dollars", "一百元"),
    ("10.05", "ten dollars and five cents", "十元零五分"),
    ("10.50", "ten dollars and fifty cents", "十元五角"),
    ("10.55", "ten dollars and fifty five cents", "十元五角五分"),
    ("0.05", "five cents", "五分"),
    ("0.01", "one cent", "一分"),
    ("0.2", "twenty cents", "两角"),
    ("0.02", "two cents", "两分"),
    ("1.01", "one dollar and one cent", "一元零一分"),
    ("10000", "ten thousand dollars", "一万元"),
    ("100000000", "one hundred million dollars", "一亿元"),
    ("-12.30", "minus twelve dollars and thirty cents", "负十二元三角"),
    ("-0.004", "zero dollars", "零元"),  # rounds to nothing: no "minus"
    ("0.005", "one cent", "一分"),  # half a cent rounds up
    ("999999999.996", "one billion dollars", "十亿元"),
]


@pytest.mark.parametrize(("value", "english", "mandarin"), CURRENCY)
def test_currency(value: str, english: str, mandarin: str) -> None:
    assert en("currency", value) == english
    assert zh("currency", value) == mandarin


def test_very_large_values_are_read_digit_by_digit_past_the_cap() -> None:
    top = str(MAX_GROUPED)  # 9999 9999 9999 9999: still a number
    assert zh("number", top) == "九千九百九十九万九千九百九十九亿九千九百九十九万九千九百九十九"
    assert en("number", top) == (
        "nine quadrillion nine hundred and ninety nine trillion nine hundred and ninety nine "
        "billion nine hundred and ninety nine million nine hundred and ninety nine thousand "
        "nine hundred and ninety nine"
    )
    past = str(MAX_GROUPED + 1)  # 10^16: 亿亿 is not said, nor "ten quadrillion"
    assert zh("number", past) == "一" + "零" * 16
    assert en("number", past) == " ".join(["one", *["zero"] * 16])
    assert zh("currency", past + ".75") == "一" + "零" * 16 + "元"  # cents left out
    longest = "9" * MAX_DIGITS + ".999"
    assert zh("number", longest) == "九" * MAX_DIGITS + "点九九九"
    assert zh("currency", longest) == "一" + "零" * MAX_DIGITS + "元"  # rounded up, exactly
    assert en("currency", "-" + past) == " ".join(["minus", "one", *["zero"] * 16, "dollars"])


@pytest.mark.parametrize(
    "value", ["", "abc", "12abc", "Infinity", "-inf", "nan", "1e400", "9" * (MAX_DIGITS + 1)]
)
@pytest.mark.parametrize("fmt", ["number", "currency"])
def test_values_that_are_not_numbers_are_not_said(fmt: str, value: str) -> None:
    assert spoken(EN, fmt, value) is None  # type: ignore[arg-type]
    assert spoken(ZH, fmt, value) is None  # type: ignore[arg-type]


def test_many_decimals_are_rounded() -> None:
    assert en("number", "0.1234567") == "zero point one two three four five seven"
    assert zh("number", "1e-30") == "零"


def test_digits_and_keys() -> None:
    assert en("digits", "*67#0") == "star six seven hash zero"
    assert zh("digits", "*67#0") == "星号六七井号零"
    assert zh("digits", "12") == "一二"  # read as keys: 二, never 两
    assert en("digits", "+1 (555) 01") == "one five five five zero one"


DATES = [
    ("2026-12-07", "Monday December seventh twenty twenty six", "二零二六年十二月七日星期一"),
    (
        "2005-02-22",
        "Tuesday February twenty second two thousand and five",
        "二零零五年二月二十二日星期二",
    ),
    ("2000-01-01", "Saturday January first two thousand", "二零零零年一月一日星期六"),
    (
        "1999-10-31",
        "Sunday October thirty first nineteen ninety nine",
        "一九九九年十月三十一日星期日",
    ),
    ("1905-03-10T09:00:00", "Friday March tenth nineteen oh five", "一九零五年三月十日星期五"),
    ("1900-06-11", "Monday June eleventh nineteen hundred", "一九零零年六月十一日星期一"),
]


@pytest.mark.parametrize(("value", "english", "mandarin"), DATES)
def test_dates(value: str, english: str, mandarin: str) -> None:
    assert en("date", value) == english
    assert zh("date", value) == mandarin


def test_a_bad_date_is_not_said() -> None:
    assert spoken(EN, "date", "2026-13-01") is None
    assert spoken(ZH, "date", "tomorrow") is None


TIMES = [
    (dt.time(0, 0), "twelve o'clock a m", "凌晨十二点整"),
    (dt.time(2, 0), "two o'clock a m", "凌晨两点整"),
    (dt.time(9, 5), "nine oh five a m", "上午九点零五分"),
    (dt.time(12, 30), "twelve thirty p m", "中午十二点三十分"),
    (dt.time(14, 2), "two oh two p m", "下午两点零二分"),
    (dt.time(20, 45), "eight forty five p m", "晚上八点四十五分"),
]


@pytest.mark.parametrize(("at", "english", "mandarin"), TIMES)
def test_times(at: dt.time, english: str, mandarin: str) -> None:
    assert " ".join(EN.time(at)) == english
    assert "".join(ZH.time(at)) == mandarin


ORDINALS = [
    (1, "first", "第一"),
    (2, "second", "第二"),  # 第二, never 第两
    (3, "third", "第三"),
    (11, "eleventh", "第十一"),
    (12, "twelfth", "第十二"),
    (20, "twentieth", "第二十"),
    (21, "twenty first", "第二十一"),
    (100, "one hundredth", "第一百"),
    (102, "one hundred and second", "第一百零二"),
    (1000, "one thousandth", "第一千"),
    (10000, "ten thousandth", "第一万"),
]


@pytest.mark.parametrize(("n", "english", "mandarin"), ORDINALS)
def test_ordinals(n: int, english: str, mandarin: str) -> None:
    assert " ".join(EN.ordinal(n)) == english
    assert "".join(ZH.ordinal(n)) == mandarin


def test_queue_sentences() -> None:
    assert EN.queue_position(3) + EN.queue_wait(1) == [
        "You are", "third", "in line.", "Your wait is about", "one", "minute."
    ]  # fmt: skip
    assert "".join(ZH.queue_position(2) + ZH.queue_wait(2)) == "您排在第二位。预计等待两分钟。"
    assert "".join(ZH.read_back("+8613800138000".lstrip("+"))) == (
        "您输入的号码是八六一三八零零一三八零零零确认请按一"
    )


@pytest.mark.parametrize("rules", [EN, ZH], ids=["en", "zh"])
def test_every_word_said_is_a_rendered_clip(rules: SayRules) -> None:
    """Start-up renders ``rules.clips``: no value may need a word outside it."""
    rng = random.Random(13)
    said: set[str] = set()
    samples = [0, 1, 2, 10, 100, MAX_GROUPED, MAX_GROUPED + 1]
    samples += [rng.randrange(10 ** rng.randrange(1, 17)) for _ in range(3000)]
    for n in samples:
        said.update(rules.whole(n), rules.whole(-n, quantity=True), rules.ordinal(n + 1))
        said.update(
            rules.currency(n, n % 100), rules.number(Decimal(rng.choice([n, -n])).scaleb(-3))
        )
    day = dt.date(1890, 1, 1)
    while day.year < 2110:
        said.update(rules.date(day))
        day += dt.timedelta(days=rng.randrange(1, 40))
    for minute in range(0, 24 * 60, 7):
        said.update(rules.time(dt.time(minute // 60, minute % 60)))
    said.update(rules.spell("0123456789*#"), rules.read_back("123"), rules.queue_position(7))
    said.update(rules.queue_wait(1), rules.queue_wait(2), [rules.queue.enter_number])
    said.add(rules.queue.sorry)
    assert said <= rules.clips, said - rules.clips
    assert all(word.strip() == word and word for word in rules.clips)


def test_registry_and_clip_names() -> None:
    assert rules_for("en") is EN and rules_for("zh") is ZH
    assert rules_for("zh-CN") is ZH and rules_for("zh_TW") is ZH and rules_for("cmn") is ZH
    assert rules_for("en-GB") is EN
    assert rules_for("fr") is None and rules_for("ko") is None
    assert clip_file("两", "zh").startswith("say/zh/")
    assert clip_file("两", "zh") != clip_file("两", "cmn") != clip_file("two", "en")
