"""A small, safe expression language for ``branch`` conditions.

Conditions are parsed with :func:`ast.parse` (``mode="eval"``) and the tree is checked against
a strict whitelist and turned into plain Python closures; user text is never given to
``eval``/``exec``/``compile``. What a condition may use::

    balance > 100 and not blocked          names, and / or / not
    choice in ["1", "2"]                   in / not in with a list, tuple or string
    1 <= len(pin) <= 8                     chained comparisons == != < <= > >=
    (total - paid) * 2 >= limit            + - * / % on numbers
    matches(pin, "[0-9]{4}")               functions (see FUNCTIONS)

Flow variables are strings (they come from DTMF and HTTP), so comparisons between a number and a
numeric string compare numbers (``"250.5" > 100`` is true), arithmetic accepts numeric strings,
and ordering two numeric strings compares their values. Equality between two strings stays exact
(``"007" == "7"`` is false: PINs and account numbers keep their leading zeros). A variable that
is not set evaluates to ``""``. ``true``/``false``/``null`` are aliases of ``True``/``False``/
``None``.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.errors import ExpressionError, ExpressionSyntaxError, PatternError
from ivr.flow.regex import compile_flow_regex

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Expression",
    "compile_expression",
    "to_number",
    "to_text",
]

MAX_LENGTH = 1000
MAX_DEPTH = 32
MAX_NUMERIC_TEXT = 40
# Far beyond any amount a flow handles; keeps results finite (no inf/nan) and printable
# (str() of an int refuses over 4300 digits).
MAX_MAGNITUDE = 10**100

Value = str | int | float | bool | None
Operand = Value | tuple[Value, ...]
Env = Mapping[str, object]
Evaluator = Callable[[Env], Value]

ALLOWED = (
    'conditions may use variables, literals ("text", 12, 3.5, true, false, null), '
    "and/or/not, == != < <= > >=, in/not in, + - * / % and the functions "
)
ALIASES: dict[str, Value] = {"true": True, "false": False, "null": None}
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


def _show(value: Operand) -> str:
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


def _compare(op: str, a: Operand, b: Operand) -> bool:
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
    raise ExpressionError(f"cannot compare {_show(a)} {op} {_show(b)}: not both numbers or text")


def _contains(container: Operand, item: Operand) -> bool:
    if isinstance(container, tuple):
        return any(_equal(item, x) for x in container)
    if isinstance(container, str) and (isinstance(item, str) or to_number(item) is not None):
        return to_text(item) in container
    raise ExpressionError(f"cannot test {_show(item)} in {_show(container)}")


def _arith(symbol: str, a: Value, b: Value) -> Value:
    na, nb = to_number(a), to_number(b)
    if na is None or nb is None:
        bad = a if na is None else b
        raise ExpressionError(f"'{symbol}' needs numbers, got {_show(bad)}")
    if symbol in "/%" and nb == 0:
        raise ExpressionError(f"division by zero in {_show(a)} {symbol} {_show(b)}")
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
        raise ExpressionError(f"int() needs a number, got {_show(value)}")
    return int(_bounded(number, "int()"))


def _text_fn(name: str, impl: Callable[..., Value]) -> Callable[..., Value]:
    def call(*args: Value) -> Value:
        for arg in args:
            if not isinstance(arg, str | int | float) or isinstance(arg, bool):
                raise ExpressionError(f"{name}() needs text, got {_show(arg)}")
        return impl(*(to_text(a) for a in args))

    return call


FUNCTIONS: dict[str, tuple[int, Callable[..., Value]]] = {
    "startswith": (2, _text_fn("startswith", str.startswith)),
    "endswith": (2, _text_fn("endswith", str.endswith)),
    "contains": (2, _text_fn("contains", lambda s, sub: sub in s)),
    "len": (1, _text_fn("len", len)),
    "lower": (1, _text_fn("lower", str.lower)),
    "upper": (1, _text_fn("upper", str.upper)),
    "str": (1, to_text),
    "int": (1, _fn_int),
    "matches": (2, lambda s, rx: None),  # compiled specially: the regex must be a literal
}
_FUNCTION_LIST = ", ".join(sorted(FUNCTIONS))

_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Mod: "%",
}
_BINOP_HINTS: dict[type[ast.operator], str] = {
    ast.Pow: "'**' (powers) is not supported; use + - * / % on numbers",
    ast.FloorDiv: "'//' is not supported; use int(a / b)",
    ast.BitAnd: "'&' is not supported; use 'and'",
    ast.BitOr: "'|' is not supported; use 'or'",
}
_CMPOPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_COMPREHENSION = "comprehensions are"
_NODE_NAMES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access (a.b) is",
    ast.Subscript: "indexing (a[0]) is",
    ast.Lambda: "lambda is",
    ast.IfExp: "'x if c else y' is",
    ast.JoinedStr: "f-strings are",
    ast.ListComp: _COMPREHENSION,
    ast.GeneratorExp: _COMPREHENSION,
    ast.SetComp: _COMPREHENSION,
    ast.DictComp: _COMPREHENSION,
    ast.Dict: "dicts are",
    ast.Set: "sets are",
    ast.NamedExpr: "':=' is",
    ast.Await: "await is",
}


@dataclass(frozen=True)
class Expression:
    """A compiled condition. ``names`` are the flow variables it reads."""

    source: str
    names: frozenset[str]
    _run: Evaluator = field(repr=False, compare=False)

    def evaluate(self, variables: Mapping[str, object]) -> object:
        """Evaluate with ``variables``; unset names are ``""``. Raises :class:`ExpressionError`."""
        return self._run(variables)

    def test(self, variables: Mapping[str, object]) -> bool:
        """Evaluate and return the truth of the result (``""``, ``0``, false, null are false)."""
        return bool(self._run(variables))


def compile_expression(src: str) -> Expression:
    """Parse and check ``src``; raise :class:`ExpressionSyntaxError` (an ExpressionError)."""
    if len(src) > MAX_LENGTH:
        raise ExpressionSyntaxError(
            f"condition is too long (over {MAX_LENGTH} characters)", MAX_LENGTH
        )
    if not src.strip():
        raise ExpressionSyntaxError("condition is empty", 0)
    if "\0" in src:
        raise ExpressionSyntaxError("condition contains a NUL character", src.index("\0"))
    tree = _parse(src)
    compiler = _Compiler(src)
    run = compiler.compile(tree.body, 0)
    return Expression(src, frozenset(compiler.names), run)


_HINTS = (
    (re.compile(r"&&"), "use 'and' instead of '&&'"),
    (re.compile(r"\|\|"), "use 'or' instead of '||'"),
    (re.compile(r"!(?!=)"), "use 'not' instead of '!'"),
    (re.compile(r"(?<![=!<>])=(?!=)"), "use '==' to compare ('=' assigns)"),
)
_STRINGS = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")


def _parse(src: str) -> ast.Expression:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "\d" in a regex literal
            return ast.parse(src, mode="eval")
    except SyntaxError as exc:
        blanked = _STRINGS.sub(lambda m: " " * len(m.group()), src)
        for pattern, hint in _HINTS:
            found = pattern.search(blanked)
            if found:
                raise ExpressionSyntaxError(hint, found.start()) from None
        if not exc.offset or not exc.lineno:  # the condition ended too early
            offset = len(src.rstrip())
        else:
            offset = min(_line_start(src, exc.lineno) + exc.offset - 1, len(src))
        raise ExpressionSyntaxError(f"invalid condition: {exc.msg}", offset) from None
    except (RecursionError, MemoryError):
        raise ExpressionSyntaxError("condition is nested too deeply", 0) from None


def _line_start(src: str, lineno: int) -> int:
    start = 0
    for _ in range(lineno - 1):
        start = src.index("\n", start) + 1
    return start


class _Compiler:
    def __init__(self, src: str) -> None:
        self.src = src
        self.names: set[str] = set()

    def offset(self, node: ast.AST, *, end: bool = False) -> int:
        """The character offset in ``src`` where ``node`` starts (or ends)."""
        if end:
            lineno, col = getattr(node, "end_lineno", 1), getattr(node, "end_col_offset", 0)
        else:
            lineno, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        start = _line_start(self.src, lineno)
        line = self.src[start:].split("\n", 1)[0]
        return start + len(line.encode()[:col].decode(errors="ignore"))

    def between(self, left: ast.AST, right: ast.AST) -> int:
        """The offset of the operator written between ``left`` and ``right``."""
        pos, stop = self.offset(left, end=True), self.offset(right)
        while pos < stop and self.src[pos] in " \t\r\n()":
            pos += 1
        return pos

    def fail(self, node: ast.AST, message: str, offset: int | None = None) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(message, self.offset(node) if offset is None else offset)

    def compile(self, node: ast.AST, depth: int) -> Evaluator:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"condition is nested too deeply (over {MAX_DEPTH} levels)")
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node, depth + 1)
        if isinstance(node, ast.List | ast.Tuple):
            raise self.fail(node, 'lists are only allowed after \'in\', like: x in ["1", "2"]')
        what = _NODE_NAMES.get(type(node), f"'{type(node).__name__}' is")
        raise self.fail(node, f"{what} not supported; {ALLOWED}{_FUNCTION_LIST}")

    def constant(self, node: ast.Constant, depth: int) -> Evaluator:
        value = node.value
        if value is not None and not isinstance(value, str | int | float | bool):
            raise self.fail(node, f"literal {value!r} is not supported; use text or numbers")
        return lambda env: value

    def name(self, node: ast.Name, depth: int) -> Evaluator:
        if node.id in ALIASES:
            alias = ALIASES[node.id]
            return lambda env: alias
        if node.id in FUNCTIONS:
            raise self.fail(node, f"'{node.id}' is a function; call it like {node.id}(x)")
        key = node.id
        self.names.add(key)

        def lookup(env: Env) -> Value:
            value = env.get(key, "")
            if value is None or isinstance(value, str | int | float | bool):
                return value
            return str(value)

        return lookup

    def boolop(self, node: ast.BoolOp, depth: int) -> Evaluator:
        parts = [self.compile(v, depth) for v in node.values]
        is_and = isinstance(node.op, ast.And)

        def run(env: Env) -> Value:
            result: Value = None
            for part in parts:
                result = part(env)
                if bool(result) != is_and:
                    return result
            return result

        return run

    def unaryop(self, node: ast.UnaryOp, depth: int) -> Evaluator:
        inner = self.compile(node.operand, depth)
        if isinstance(node.op, ast.Not):
            return lambda env: not inner(env)
        if isinstance(node.op, ast.USub | ast.UAdd):
            sign = -1 if isinstance(node.op, ast.USub) else 1
            return lambda env: _arith("*", sign, inner(env))
        raise self.fail(node, "'~' is not supported; use 'not'")

    def binop(self, node: ast.BinOp, depth: int) -> Evaluator:
        symbol = _BINOPS.get(type(node.op))
        at = self.between(node.left, node.right)
        if symbol is None:
            hint = _BINOP_HINTS.get(type(node.op), "only + - * / % are supported on numbers")
            raise self.fail(node, hint, at)
        for side in (node.left, node.right):
            if isinstance(side, ast.Constant) and isinstance(side.value, str):
                raise self.fail(
                    node,
                    f"'{symbol}' works on numbers only; text cannot be "
                    "joined or repeated in a condition",
                    at,
                )
        left, right = self.compile(node.left, depth), self.compile(node.right, depth)
        return lambda env: _arith(symbol, left(env), right(env))

    def compare(self, node: ast.Compare, depth: int) -> Evaluator:
        ops: list[str] = []
        lefts = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            if isinstance(op, ast.Is | ast.IsNot):
                better = "==" if isinstance(op, ast.Is) else "!="
                at = self.between(lefts[i], lefts[i + 1])
                raise self.fail(node, f"'is' is not supported; use '{better}'", at)
            ops.append(_CMPOPS[type(op)])
        first = self.compile(node.left, depth)
        rights: list[Callable[[Env], Operand]] = [
            self.sequence(c, depth)
            if op in ("in", "not in") and isinstance(c, ast.List | ast.Tuple)
            else self.compile(c, depth)
            for op, c in zip(ops, node.comparators, strict=True)
        ]

        def run(env: Env) -> Value:
            left: Operand = first(env)
            for op, right_fn in zip(ops, rights, strict=True):
                right = right_fn(env)
                if not _compare(op, left, right):
                    return False
                left = right
            return True

        return run

    def sequence(self, node: ast.List | ast.Tuple, depth: int) -> Callable[[Env], Operand]:
        items = [self.compile(e, depth + 1) for e in node.elts]
        return lambda env: tuple(item(env) for item in items)

    def call(self, node: ast.Call, depth: int) -> Evaluator:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            called = node.func.id if isinstance(node.func, ast.Name) else "this"
            raise self.fail(
                node, f"function '{called}' is not available; use one of: {_FUNCTION_LIST}"
            )
        name = node.func.id
        arity, impl = FUNCTIONS[name]
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, f"{name}() takes plain arguments only")
        if len(node.args) != arity:
            plural = "s" if arity > 1 else ""
            raise self.fail(node, f"{name}() takes {arity} argument{plural}, got {len(node.args)}")
        if name == "matches":
            return self.matches(node, depth)
        args = [self.compile(a, depth) for a in node.args]
        return lambda env: impl(*(a(env) for a in args))

    def matches(self, node: ast.Call, depth: int) -> Evaluator:
        subject_fn = self.compile(node.args[0], depth)
        pattern_node = node.args[1]
        if not (isinstance(pattern_node, ast.Constant) and isinstance(pattern_node.value, str)):
            raise self.fail(
                pattern_node,
                'matches() needs the pattern as a quoted literal, like matches(pin, "[0-9]{4}")',
            )
        try:
            regex = compile_flow_regex(pattern_node.value)
        except PatternError as exc:
            raise self.fail(pattern_node, f"invalid pattern for matches(): {exc}") from None
        text_of = _text_fn("matches", lambda s: s)

        def run(env: Env) -> Value:
            return regex.fullmatch(str(text_of(subject_fn(env)))) is not None

        return run


_HANDLERS: dict[type[ast.AST], Callable[[_Compiler, Any, int], Evaluator]] = {
    ast.Constant: _Compiler.constant,
    ast.Name: _Compiler.name,
    ast.BoolOp: _Compiler.boolop,
    ast.UnaryOp: _Compiler.unaryop,
    ast.BinOp: _Compiler.binop,
    ast.Compare: _Compiler.compare,
    ast.Call: _Compiler.call,
}
