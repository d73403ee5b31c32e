"""What the condition language computes: flow values, their comparisons, arithmetic and the
function table. :mod:`ivr.flow.expr` parses a condition and compiles it into closures that call
these at run time.

Flow variables are strings (they come from DTMF and HTTP), so a number and a numeric string
compare as numbers, arithmetic accepts numeric strings, and ordering two numeric strings
compares their values; equality between two strings stays exact (``"007" == "7"`` is false).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from ivr.errors import ExpressionError

__all__ = [
    "FUNCTIONS",
    "MAX_MAGNITUDE",
    "MAX_NUMERIC_TEXT",
    "Operand",
    "Value",
    "arith",
    "compare",
    "show",
    "text_function",
    "to_number",
    "to_text",
]

MAX_NUMERIC_TEXT = 40
# Far beyond any amount a flow handles; keeps results finite (no inf/nan) and printable
# (str() of an int refuses over 4300 digits).
MAX_MAGNITUDE = 10**100

Value = str | int | float | bool | None
Operand = Value | tuple[Value, ...]
_NUMERIC = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)\s*")


def to_number(value: object) -> int | float | None:
    """Return ``value`` as a number if it is one or a numeric string (``" 250.5"``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and len(value) <= MAX_NUMERIC_TEXT and _NUMERIC.fullmatch(value):
        text = value.strip()
        return float(text) if "." in text else int(text)
    return None


def to_text(value: object) -> str:
    """Render a value as flow text: ``None`` is ``""``, booleans are ``true``/``false``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def show(value: Operand) -> str:
    """A value as an error message writes it: text quoted, null for nothing."""
    return repr(value) if isinstance(value, str) else to_text(value) or "null"


def _equal(a: Operand, b: Operand) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        other = b if isinstance(a, bool) else a
        if isinstance(other, str) and other.lower() in ("true", "false"):
            return (other.lower() == "true") == (a if isinstance(a, bool) else b)
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    na, nb = to_number(a), to_number(b)
    if na is not None and nb is not None:
        return na == nb
    return a == b


def _order(op: str, a: float | str, b: float | str) -> bool:
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


def compare(op: str, a: Operand, b: Operand) -> bool:
    """``a op b`` for ``== != < <= > >= in`` and ``not in``, numeric text compared as numbers."""
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op in ("in", "not in"):
        return _contains(b, a) == (op == "in")
    na, nb = to_number(a), to_number(b)
    if na is not None and nb is not None:
        return _order(op, na, nb)
    if isinstance(a, str) and isinstance(b, str):
        return _order(op, a, b)
    raise ExpressionError(f"cannot compare {show(a)} {op} {show(b)}: not both numbers or text")


def _contains(container: Operand, item: Operand) -> bool:
    if isinstance(container, tuple):
        return any(_equal(item, x) for x in container)
    if isinstance(container, str) and (isinstance(item, str) or to_number(item) is not None):
        return to_text(item) in container
    raise ExpressionError(f"cannot test {show(item)} in {show(container)}")


def arith(symbol: str, a: Value, b: Value) -> Value:
    """``a symbol b`` for ``+ - * / %`` on numbers or numeric text, within ``MAX_MAGNITUDE``."""
    na, nb = to_number(a), to_number(b)
    if na is None or nb is None:
        bad = a if na is None else b
        raise ExpressionError(f"'{symbol}' needs numbers, got {show(bad)}")
    if symbol in "/%" and nb == 0:
        raise ExpressionError(f"division by zero in {show(a)} {symbol} {show(b)}")
    _bounded(na, f"'{symbol}'")
    _bounded(nb, f"'{symbol}'")
    return _bounded(_apply(symbol, na, nb), f"'{symbol}'")


def _apply(symbol: str, a: int | float, b: int | float) -> int | float:
    if symbol == "+":
        return a + b
    if symbol == "-":
        return a - b
    if symbol == "*":
        return a * b
    if symbol == "/":
        return a / b
    return a % b


def _bounded(number: int | float, where: str) -> int | float:
    """``number`` if it is finite and within ``MAX_MAGNITUDE``, else an ExpressionError."""
    if (isinstance(number, float) and not math.isfinite(number)) or abs(number) > MAX_MAGNITUDE:
        raise ExpressionError(f"number too large for {where} (over 1e100)")
    return number


def _fn_int(value: Value) -> Value:
    number = to_number(value)
    if number is None:
        raise ExpressionError(f"int() needs a number, got {show(value)}")
    return int(_bounded(number, "int()"))


def text_function(name: str, impl: Callable[..., Value]) -> Callable[..., Value]:
    """``impl`` as a condition function: its arguments must be text or numbers (as text)."""

    def call(*args: Value) -> Value:
        for arg in args:
            if not isinstance(arg, str | int | float) or isinstance(arg, bool):
                raise ExpressionError(f"{name}() needs text, got {show(arg)}")
        return impl(*(to_text(a) for a in args))

    return call


FUNCTIONS: dict[str, tuple[int, Callable[..., Value]]] = {
    "startswith": (2, text_function("startswith", str.startswith)),
    "endswith": (2, text_function("endswith", str.endswith)),
    "contains": (2, text_function("contains", lambda s, sub: sub in s)),
    "len": (1, text_function("len", len)),
    "lower": (1, text_function("lower", str.lower)),
    "upper": (1, text_function("upper", str.upper)),
    "str": (1, to_text),
    "int": (1, _fn_int),
    "matches": (2, lambda s, rx: None),  # compiled specially: the regex must be a literal
}
