"""Tests for prompt and URL templates."""

from __future__ import annotations

import pytest

from ivr.errors import ExpressionError, ExpressionSyntaxError
from ivr.flow.template import FORMATS, Placeholder, format_value, parse_template


def render(src: str, *, url: bool = False, **variables: str) -> str:
    return parse_template(src).render(variables, url=url)


def test_plain_substitution_and_literal_text() -> None:
    assert render("Hello {name}, welcome.", name="Ann") == "Hello Ann, welcome."


def test_text_without_placeholders() -> None:
    t = parse_template("Just text.")
    assert t.parts == ("Just text.",)
    assert t.names == frozenset()
    assert t.render({}) == "Just text."


def test_parts_and_names() -> None:
    t = parse_template("Hi {first} {last:masked}!")
    assert t.parts == (
        "Hi ",
        Placeholder("first", "", 3),
        " ",
        Placeholder("last", "masked", 11),
        "!",
    )
    assert t.names == frozenset({"first", "last"})


def test_brace_escapes() -> None:
    assert render("{{literal}} and {x} }}", x="1") == "{literal} and 1 }"


def test_spaces_inside_placeholder_are_ignored() -> None:
    assert render("{ amount : currency }", amount="5") == "5.00"


def test_unknown_variable_renders_empty() -> None:
    assert render("[{missing}]") == "[]"


def test_non_string_values_are_rendered_as_text() -> None:
    t = parse_template("{a} {b} {c}")
    assert t.render({"a": 3.0, "b": True, "c": None}) == "3 true "  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("", "1234.5", "1234.5"),
        ("digits", "1234", "1 2 3 4"),
        ("digits", "12 34", "1 2 3 4"),
        ("digits", "", ""),
        ("number", "1234", "1,234"),
        ("number", "0042", "42"),
        ("number", "1234567.250", "1,234,567.25"),
        ("number", "-1000", "-1,000"),
        ("currency", "1234.5", "1,234.50"),
        ("currency", "0.005", "0.01"),  # half up, not banker's rounding
        ("currency", "2.675", "2.68"),  # decimal, no float noise
        ("currency", " 7 ", "7.00"),
        ("currency", "-12", "-12.00"),
        ("masked", "4111111111111111", "************1111"),
        ("masked", "12345", "*2345"),
        ("masked", "123", "123"),
    ],
)
def test_formats(fmt: str, value: str, expected: str) -> None:
    src = "{v:" + fmt + "}" if fmt else "{v}"
    assert render(src, v=value) == expected
    assert format_value(value, fmt) == expected


@pytest.mark.parametrize(
    ("fmt", "value"),
    [("currency", "abc"), ("number", "1e3"), ("currency", ""), ("number", "1" * 60)],
)
def test_number_formats_reject_non_numbers(fmt: str, value: str) -> None:
    with pytest.raises(ExpressionError, match=f"cannot format .* as {fmt}: not a number"):
        render("{v:" + fmt + "}", v=value)


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("currency", "9" * 40, f"{int('9' * 40):,}.00"),  # beyond decimal's default precision
        ("currency", "-" + "9" * 39, f"-{int('9' * 39):,}.00"),
        (
            "currency",
            "1234567890123456789012345678.555",
            "1,234,567,890,123,456,789,012,345,678.56",
        ),
        (
            "number",
            "1234567890123456789012345678901.5",
            "1,234,567,890,123,456,789,012,345,678,901.5",
        ),
    ],
)
def test_long_numbers_keep_every_digit(fmt: str, value: str, expected: str) -> None:
    assert format_value(value, fmt) == expected


@pytest.mark.parametrize("value", ["Infinity", "-inf", "nan", "NaN", "1e400"])
@pytest.mark.parametrize("fmt", ["number", "currency"])
def test_number_formats_reject_what_is_not_a_finite_decimal(fmt: str, value: str) -> None:
    with pytest.raises(ExpressionError, match="not a number"):
        format_value(value, fmt)


def test_format_value_rejects_unknown_format() -> None:
    with pytest.raises(ExpressionError, match="unknown format 'money'"):
        format_value("1", "money")


def test_formats_table_is_complete() -> None:
    assert set(FORMATS) == {"", "digits", "number", "currency", "masked", "date"}


def test_date_format_checks_the_date() -> None:
    assert parse_template("{d:date}").render({"d": "2027-01-31T10:00"}) == "2027-01-31"
    with pytest.raises(ExpressionError):
        parse_template("{d:date}").render({"d": "31/01/2027"})


# ---- URL mode --------------------------------------------------------------------------------


def test_url_mode_encodes_each_value_as_one_segment() -> None:
    src = "/accounts/{account}/balance"
    assert render(src, url=True, account="12 34") == "/accounts/12%2034/balance"
    assert render(src, url=True, account="1/../../admin") == "/accounts/1%2F..%2F..%2Fadmin/balance"
    assert render(src, url=True, account="1?x=2#f") == "/accounts/1%3Fx%3D2%23f/balance"
    assert render(src, url=True, account="été") == "/accounts/%C3%A9t%C3%A9/balance"


def test_url_mode_keeps_literal_part_unencoded() -> None:
    assert render("/lookup?ani={ani}&x=1", url=True, ani="+33 1&y=2") == (
        "/lookup?ani=%2B33%201%26y%3D2&x=1"
    )


def test_url_mode_applies_format_before_encoding() -> None:
    assert render("/pay/{amount:currency}", url=True, amount="1234.5") == "/pay/1%2C234.50"


def test_prompt_mode_does_not_encode() -> None:
    assert render("/accounts/{a}", a="x/y") == "/accounts/x/y"


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_url_mode_rejects_empty_and_dot_segments(value: str) -> None:
    with pytest.raises(ExpressionError, match=r"variable 'account' .*cannot be used in a URL"):
        render("/accounts/{account}", url=True, account=value)


def test_url_mode_rejects_missing_variable() -> None:
    with pytest.raises(ExpressionError, match="'account' is empty"):
        parse_template("/accounts/{account}").render({}, url=True)


# ---- syntax errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "offset", "message"),
    [
        ("Hello {name", 6, "'{' is never closed"),
        ("Hello }", 6, "single '}'"),
        ("a {b {c}}", 5, "'{' inside a placeholder"),
        ("a {} b", 2, "empty placeholder"),
        ("a {  } b", 2, "empty placeholder"),
        ("a { 1x } b", 4, "'1x' is not a variable name"),
        ("a {x.y}", 3, "'x.y' is not a variable name"),
        ("{balance:money}", 9, "unknown format 'money'; use one of: digits, number, currency"),
        ("{balance: money }", 10, "unknown format 'money'"),
        ("{balance:}", 9, "unknown format ''"),
        ("é {x:bad}", 5, "unknown format 'bad'"),
    ],
)
def test_syntax_errors(src: str, offset: int, message: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_template(src)
    assert isinstance(info.value, ExpressionError)
    assert message in info.value.message
    assert info.value.offset == offset
