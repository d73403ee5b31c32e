"""A small, safe expression language for ``branch`` conditions.

Conditions are parsed with :func:`ast.parse` (``mode="eval"``) and the tree is checked against
a strict whitelist and turned into plain Python closures; user text is never given to
``eval``/``exec``/``compile``. What a condition may use::

    balance > 100 and not blocked          names, and / or / not
    choice in ["1", "2"]                   in / not in with a list, tuple or string
    1 <= len(pin) <= 8                     chained comparisons == != < <= > >=
    (total - paid) * 2 >= limit            + - * / % on numbers
    matches(pin, "[0-9]{4}")               functions (``ivr.flow.expr_operations.FUNCTIONS``)

Flow variables are strings (they come from DTMF and HTTP), so comparisons between a number and a
numeric string compare numbers (``"250.5" > 100`` is true), arithmetic accepts numeric strings,
and ordering two numeric strings compares their values. Equality between two strings stays exact
(``"007" == "7"`` is false: PINs and account numbers keep their leading zeros). A variable that
is not set evaluates to ``""``. ``true``/``false``/``null`` are aliases of ``True``/``False``/
``None``. What values, operators and functions compute is in :mod:`ivr.flow.expr_operations`.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.errors import ExpressionSyntaxError, PatternError
from ivr.flow.expr_operations import FUNCTIONS, Operand, Value, arith, compare, text_function
from ivr.flow.regex import compile_flow_regex

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Expression",
    "compile_expression",
]

MAX_LENGTH = 1000
MAX_DEPTH = 32

Env = Mapping[str, object]
Evaluator = Callable[[Env], Value]

ALLOWED = (
    'conditions may use variables, literals ("text", 12, 3.5, true, false, null), '
    "and/or/not, == != < <= > >=, in/not in, + - * / % and the functions "
)
ALIASES: dict[str, Value] = {"true": True, "false": False, "null": None}

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
            return lambda env: arith("*", sign, inner(env))
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
        return lambda env: arith(symbol, left(env), right(env))

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
                if not compare(op, left, right):
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
        text_of = text_function("matches", lambda s: s)

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
