"""Prompt and URL templates: ``"Your balance is {balance:currency}."``.

Syntax: literal text with ``{name}`` or ``{name:format}`` placeholders; ``{{`` and ``}}`` stand
for literal braces. Formats (see :data:`FORMATS`):

========== ========================================= ====================
format     effect                                    ``"1234.5"`` becomes
========== ========================================= ====================
(none)     the value as is                           ``1234.5``
digits     every character spelled, space separated  ``1 2 3 4 . 5``
number     a number with thousands separators        ``1,234.5``
currency   two decimals, thousands separators        ``1,234.50``
masked     all but the last 4 characters as ``*``    ``**34.5``
date       an ISO date, checked (``2027-01-31``)     (an error)
========== ========================================= ====================

A variable that is not set renders as ``""`` (like in conditions), except in URLs, where an
empty value would change which resource is addressed and is an error instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from urllib.parse import quote

from ivr.errors import ExpressionError, ExpressionSyntaxError
from ivr.flow.expr_operations import to_text

__all__ = ["FORMATS", "Placeholder", "Template", "format_value", "parse_template"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_MAX_DECIMAL_TEXT = 40
# Room for every digit of the longest accepted value plus cents: the default context (28
# digits) would round a long amount, or raise InvalidOperation when quantizing it.
_EXACT = Context(prec=_MAX_DECIMAL_TEXT + 10, rounding=ROUND_HALF_UP)


def _decimal(value: str, fmt: str) -> Decimal:
    text = value.strip()
    if len(text) > _MAX_DECIMAL_TEXT or not _DECIMAL.fullmatch(text):
        raise ExpressionError(f"cannot format {value!r} as {fmt}: not a number")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex only lets decimals through
        raise ExpressionError(f"cannot format {value!r} as {fmt}: not a number") from None


def _plain(value: str) -> str:
    return value


def _digits(value: str) -> str:
    return " ".join(ch for ch in value if not ch.isspace())


def _number(value: str) -> str:
    number = _decimal(value, "number")
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number.normalize(_EXACT):,f}"


def _currency(value: str) -> str:
    number = _decimal(value, "currency").quantize(Decimal("0.01"), context=_EXACT)
    return f"{number:,.2f}"


def _masked(value: str) -> str:
    hidden = max(len(value) - 4, 0)
    return "*" * hidden + value[hidden:]


def _date(value: str) -> str:
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise ExpressionError(f"{value!r} is not a date (YYYY-MM-DD)") from None


FORMATS: dict[str, Callable[[str], str]] = {
    "": _plain,
    "digits": _digits,
    "number": _number,
    "currency": _currency,
    "masked": _masked,
    "date": _date,
}
_FORMAT_LIST = ", ".join(name for name in FORMATS if name)


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One ``{name:format}`` in a template; ``offset`` is where its ``{`` is."""

    name: str
    format: str
    offset: int


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal strings and :class:`Placeholder` parts, in order."""

    source: str
    parts: tuple[str | Placeholder, ...]

    @property
    def names(self) -> frozenset[str]:
        """The variables the template reads."""
        return frozenset(p.name for p in self.parts if isinstance(p, Placeholder))

    def render(self, variables: Mapping[str, str], *, url: bool = False) -> str:
        """Fill the placeholders from ``variables``.

        With ``url=True`` every substituted value is percent-encoded as one path segment
        (``/``, ``?``, ``#``, ``&`` ... are escaped) so caller input cannot change the URL's
        shape; values that are empty or only dots (``..``) are rejected. Raises
        :class:`ExpressionError` when a value cannot be formatted (``"abc"`` as currency).
        """
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            text = FORMATS[part.format](to_text(variables.get(part.name, "")))
            if url:
                text = _url_segment(part.name, text)
            out.append(text)
        return "".join(out)


def _url_segment(name: str, text: str) -> str:
    if not text:
        raise ExpressionError(f"variable '{name}' is empty; it cannot be used in a URL")
    if text.strip(".") == "":
        raise ExpressionError(f"variable '{name}' is {text!r}; it cannot be used in a URL")
    return quote(text, safe="")


def parse_template(s: str) -> Template:
    """Parse ``s``; raise :class:`ExpressionSyntaxError` (with ``.offset``) on bad syntax."""
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch in "{}" and s.startswith(ch * 2, i):
            literal.append(ch)
            i += 2
        elif ch == "}":
            raise ExpressionSyntaxError("single '}' in text; write '}}' for a literal brace", i)
        elif ch == "{":
            close = _find_close(s, i)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_placeholder(s, i, close))
            i = close + 1
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return Template(s, tuple(parts))


def _find_close(s: str, start: int) -> int:
    for j in range(start + 1, len(s)):
        if s[j] == "}":
            return j
        if s[j] == "{":
            raise ExpressionSyntaxError(
                "'{' inside a placeholder; write '{{' for a literal brace", j
            )
    raise ExpressionSyntaxError(
        "'{' is never closed; write {name} or {name:format}, or '{{' for a literal brace", start
    )


def _placeholder(s: str, start: int, close: int) -> Placeholder:
    body = s[start + 1 : close]
    name_part, colon, fmt_part = body.partition(":")
    name = name_part.strip()
    if not name:
        raise ExpressionSyntaxError("empty placeholder; write {name} or {name:format}", start)
    name_at = start + 1 + (len(name_part) - len(name_part.lstrip()))
    if not _NAME.fullmatch(name):
        raise ExpressionSyntaxError(
            f"{name!r} is not a variable name; use letters, digits and '_'", name_at
        )
    fmt = fmt_part.strip()
    if colon and (not fmt or fmt not in FORMATS):
        fmt_at = start + 1 + len(name_part) + 1 + (len(fmt_part) - len(fmt_part.lstrip()))
        raise ExpressionSyntaxError(f"unknown format {fmt!r}; use one of: {_FORMAT_LIST}", fmt_at)
    return Placeholder(name, fmt, start)


def format_value(value: object, fmt: str) -> str:
    """Format one value like a placeholder would (handy for ``say`` nodes and tests)."""
    if fmt not in FORMATS:
        raise ExpressionError(f"unknown format {fmt!r}; use one of: {_FORMAT_LIST}")
    return FORMATS[fmt](to_text(value))
