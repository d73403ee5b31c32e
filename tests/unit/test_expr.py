"""Tests for the safe ``branch`` condition language."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.errors import ExpressionError, ExpressionSyntaxError
from ivr.flow.expr import MAX_LENGTH, compile_expression
from ivr.flow.expr_operations import to_number, to_text


def ev(src: str, **variables: object) -> object:
    return compile_expression(src).evaluate(variables)


def syntax_error(src: str) -> ExpressionSyntaxError:
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_expression(src)
    return info.value


# ---- evaluation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "variables", "expected"),
    [
        ("balance > 100", {"balance": "250.5"}, True),
        ("balance > 100", {"balance": "99.99"}, False),
        ("balance >= 100.0", {"balance": "100"}, True),
        ("100 < balance", {"balance": "1000"}, True),
        ("balance > limit", {"balance": "1000", "limit": "250"}, True),  # numeric, not lexical
        ("choice == 1", {"choice": "1"}, True),
        ('choice == "1"', {"choice": "1"}, True),
        ('pin == "0123"', {"pin": "0123"}, True),
        ("a == b", {"a": "007", "b": "7"}, False),  # two strings compare exactly
        ("choice != 2", {"choice": "1"}, True),
        ('x == ""', {}, True),  # unknown variable is empty
        ("not missing", {}, True),
        ("vip == true", {"vip": "true"}, True),
        ("vip == true", {"vip": "false"}, False),
        ("vip == false", {"vip": "FALSE"}, True),
        ("x == null", {"x": None}, True),
        ("x == None", {"x": None}, True),
        ("True and not False", {}, True),
        ("1 <= len(pin) <= 4", {"pin": "1234"}, True),
        ("1 <= len(pin) <= 4", {"pin": "12345"}, False),
        ('choice in ["1", "2"]', {"choice": "2"}, True),
        ("choice in (1, 2)", {"choice": "2"}, True),
        ('choice not in ["1", "2"]', {"choice": "3"}, True),
        ('"5" in digits', {"digits": "12345"}, True),
        ("5 in digits", {"digits": "1234"}, False),
        ("(total - paid) * 2 >= 10", {"total": "10", "paid": "4.5"}, True),
        ("total % 2 == 1", {"total": "7"}, True),
        ("amount / 4 == 2.5", {"amount": "10"}, True),
        ("-amount < 0", {"amount": "3"}, True),
        ("+amount == 3", {"amount": "3"}, True),
        ('matches(pin, "[0-9]{4}")', {"pin": "1234"}, True),
        ('matches(pin, "[0-9]{4}")', {"pin": "12345"}, False),  # fullmatch, not search
        (r"matches(pin, '\d+')", {"pin": "42"}, True),
        ('startswith(ani, "+33")', {"ani": "+33612"}, True),
        ("endswith(ani, 12)", {"ani": "+33612"}, True),
        ('contains(name, "ann")', {"name": "joanna"}, True),
        ('lower(x) == "yes"', {"x": "YeS"}, True),
        ('upper(x) == "YES"', {"x": "yes"}, True),
        ("int(x) == 250", {"x": "250.9"}, True),
        ('str(n) == "42"', {"n": 42}, True),
        ('x > "b"', {"x": "c"}, True),  # two non-numeric strings order as text
    ],
)
def test_evaluates(src: str, variables: dict[str, object], expected: object) -> None:
    assert compile_expression(src).evaluate(variables) == expected


def test_and_or_return_operands_and_short_circuit() -> None:
    assert ev('name or "guest"') == "guest"
    assert ev('name or "guest"', name="ann") == "ann"
    assert ev("a and b", a="x", b="y") == "y"
    # The right side would raise (text * number) but is never evaluated.
    assert ev("false and x * 2 > 1", x="abc") is False
    assert ev("true or x * 2 > 1", x="abc") is True


def test_chained_comparison_stops_at_first_false() -> None:
    assert ev("1 < x < 3", x="2") is True
    assert ev("1 < x < 3", x="5") is False
    assert ev("3 > x > 1 > 0", x="2") is True


def test_test_returns_truthiness() -> None:
    expr = compile_expression("name")
    assert expr.test({"name": "ann"}) is True
    assert expr.test({}) is False


def test_names_lists_variables_but_not_functions_or_aliases() -> None:
    expr = compile_expression('matches(pin, "1") and len(x) > y or true or null == z')
    assert expr.names == frozenset({"pin", "x", "y", "z"})


def test_compiled_expression_is_reusable_with_other_variables() -> None:
    expr = compile_expression("balance > 100")
    assert expr.evaluate({"balance": "101"}) is True
    assert expr.evaluate({"balance": "100"}) is False


# ---- run-time errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "variables", "message"),
    [
        ("balance > 100", {"balance": "abc"}, "cannot compare 'abc' > 100"),
        ("x * 2", {"x": "ab"}, "'*' needs numbers, got 'ab'"),
        ("x + 1", {}, "'+' needs numbers, got ''"),
        ("x / y", {"x": "1", "y": "0"}, "division by zero"),
        ("x % 0", {"x": "1"}, "division by zero"),
        ("int(x)", {"x": "12a"}, "int() needs a number, got '12a'"),
        ("len(x)", {"x": True}, "len() needs text, got true"),
        ("x < null", {"x": "1"}, "cannot compare"),
        ("x in 5", {"x": "1"}, "cannot test '1' in 5"),
    ],
)
def test_runtime_errors(src: str, variables: dict[str, object], message: str) -> None:
    expr = compile_expression(src)
    with pytest.raises(ExpressionError) as info:
        expr.evaluate(variables)
    assert not isinstance(info.value, ExpressionSyntaxError)
    assert message in str(info.value)


def test_huge_numeric_string_is_not_a_number() -> None:
    assert to_number("9" * 5000) is None
    with pytest.raises(ExpressionError):
        ev("x > 1", x="9" * 5000)


# ---- compile-time errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "offset", "message"),
    [
        ("a && b", 2, "use 'and'"),
        ("a || b", 2, "use 'or'"),
        ("!a", 0, "use 'not'"),
        ("a = 1", 2, "use '=='"),
        ("a.b == 1", 0, "attribute access"),
        ("a[0] == 1", 0, "indexing"),
        ('x == 1 and __import__("os")', 11, "function '__import__' is not available"),
        ("x.__class__", 0, "attribute access"),
        ('open("f")', 0, "use one of: contains, endswith, int, len, lower, matches"),
        ("(lambda: 1)()", 0, "function 'this' is not available"),
        ("lambda: 1", 0, "lambda"),
        ("[c for c in x]", 0, "comprehensions"),
        ('f"{x}"', 0, "f-strings"),
        ("{1: 2}", 0, "dicts"),
        ("x if y else z", 0, "'x if c else y'"),
        ("a ** 2", 2, "'**' (powers) is not supported"),
        ("a // 2", 2, "'//' is not supported"),
        ("a & b", 2, "use 'and'"),
        ("a << 2", 2, "only + - * / %"),
        ("~a", 0, "'~' is not supported"),
        ('"ab" * 1000', 5, "text cannot be joined or repeated"),
        ('x + "a"', 2, "text cannot be joined"),
        ("x is None", 2, "use '=='"),
        ("x == 1 and y is not None", 13, "use '!='"),
        ("[1, 2]", 0, "lists are only allowed after 'in'"),
        ("len(a, b)", 0, "len() takes 1 argument, got 2"),
        ("matches(a)", 0, "matches() takes 2 arguments, got 1"),
        ("len(s=a)", 0, "plain arguments only"),
        ("len(*a)", 0, "plain arguments only"),
        ("matches(a, b)", 11, "pattern as a quoted literal"),
        ('matches(a, "[")', 11, "invalid pattern for matches()"),
        ("len == 1", 0, "'len' is a function"),
        ("b'x' == x", 0, "literal b'x' is not supported"),
        ("1j == x", 0, "not supported"),
        ("(x := 1)", 1, "':='"),
        ("x == (", 5, "'(' was never closed"),
        ("x ==", 4, "invalid condition"),
        ("   ", 0, "condition is empty"),
    ],
)
def test_compile_errors(src: str, offset: int, message: str) -> None:
    err = syntax_error(src)
    assert isinstance(err, ExpressionError)
    assert message in err.message
    assert err.offset == offset


def test_unsupported_syntax_message_says_what_is_allowed() -> None:
    err = syntax_error("a.b")
    assert "and/or/not" in err.message
    assert "in/not in" in err.message
    assert "matches" in err.message


def test_offsets_are_characters_not_utf8_bytes() -> None:
    err = syntax_error("prénom == 1 and x.y")
    assert err.offset == len("prénom == 1 and ")
    err = syntax_error("prénom ** 2")
    assert err.offset == len("prénom ")


def test_offsets_on_later_lines_count_from_start_of_source() -> None:
    src = "(x == 1 and\n y.z)"
    assert syntax_error(src).offset == src.index("y.z")


def test_too_long() -> None:
    err = syntax_error("x or " * (MAX_LENGTH // 5) + "x")
    assert "too long" in err.message


def test_too_deep() -> None:
    assert "nested too deeply" in syntax_error("len(" * 40 + "x" + ")" * 40).message
    assert "nested too deeply" in syntax_error("-" * 40 + "x").message
    assert compile_expression("(" * 40 + "x" + ")" * 40).evaluate({"x": "1"}) == "1"
    assert "nested too deeply" in syntax_error("not " * 40 + "x").message


def test_nul_character() -> None:
    assert syntax_error("x == 1\0").offset == 6


def test_never_uses_python_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    import ast
    import builtins

    real_compile = builtins.compile
    calls: list[int] = []

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("eval/exec must not be used")

    def only_ast(source: Any, filename: Any, mode: Any, flags: int = 0, *a: Any, **k: Any) -> Any:
        calls.append(flags)
        assert flags & ast.PyCF_ONLY_AST, "compile() may only be used to build an AST"
        return real_compile(source, filename, mode, flags, *a, **k)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", only_ast)
    expr = compile_expression("x + 1 == 3")
    monkeypatch.undo()
    assert calls  # ast.parse went through the checked compile()
    assert expr.evaluate({"x": "2"}) is True


def test_error_str_mentions_column() -> None:
    assert "column 3" in str(syntax_error("a && b"))


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), (True, "true"), (False, "false"), (3.0, "3"), (2.5, "2.5"), ("x", "x"), (7, "7")],
)
def test_to_text(value: object, text: str) -> None:
    assert to_text(value) == text


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("250.5", 250.5),
        (" 42 ", 42),
        ("-3", -3),
        (".5", 0.5),
        ("abc", None),
        ("", None),
        ("1e3", None),
        (True, None),
        (4, 4),
    ],
)
def test_to_number(text: object, number: object) -> None:
    assert to_number(text) == number


# ---- caller and back-office values never escape as Python errors -----------------------------


def _product(depth: int) -> str:
    """``((x*x)*(x*x))...``: 2**depth factors of x, balanced to stay under MAX_DEPTH."""
    return "x" if depth == 0 else f"({_product(depth - 1)}*{_product(depth - 1)})"


BIG = _product(7)  # 128 factors of a 40-digit number: 5120 digits, over int's str limit
FLOAT_39 = "9" * 38 + ".5"  # a numeric string at the length limit, as a float


@pytest.mark.parametrize(
    ("src", "x"),
    [
        ("int(x * x * x * x * x * x * x * x * x * x * x) > 0", FLOAT_39),  # inf -> OverflowError
        ("int(1e400) > 0", ""),  # a literal that is already inf
        (
            "x * x * x * x * x * x * x * x * x * x * x - x * x * x * x * x * x * x * x * x * x * x"
            " == 0",
            FLOAT_39,
        ),  # inf - inf is nan
        (f"len(str({BIG})) > 0", "9" * 40),  # str() of 5120 digits: ValueError
        (f"{BIG} / 3 > 1", "9" * 40),  # int too large for a float division
        (f"{BIG} * 1.5 > 1", "9" * 40),
        (f'"5" in {BIG}', "9" * 40),
    ],
)
def test_numbers_too_large_are_expression_errors(src: str, x: str) -> None:
    expr = compile_expression(src)
    with pytest.raises(ExpressionError, match="too large"):
        expr.evaluate({"x": x})


def test_large_but_sane_arithmetic_still_works() -> None:
    assert ev("x * x > 1", x="9" * 40) is True
    assert ev("int(x / 3) == 33", x="100") is True


# ---- matches(): RE2, linear time --------------------------------------------------------------


def test_matches_is_linear_time_on_a_pathological_pattern() -> None:
    # A backtracking engine doubles its time per character here: 0.8 s at 25 characters,
    # minutes at 30. RE2 answers in microseconds, and 1 MB (an HTTP value) stays fast.
    expr = compile_expression('matches(x, "([0-9]+)+")')
    assert expr.evaluate({"x": "1" * 29 + "x"}) is False
    assert expr.evaluate({"x": "1" * 1_000_000 + "x"}) is False
    assert expr.evaluate({"x": "1" * 30}) is True


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        (r"(a)\\1", "backreferences"),
        ("(?P<n>a)(?P=n)", "backreferences"),
        ("(?=a)a", "lookahead"),
        ("(?!a)b", "lookahead"),
        ("(?<=a)b", "lookbehind"),
        ("(?<!a)b", "lookbehind"),
        ("a{2000}", "repetition"),
    ],
)
def test_matches_rejects_what_re2_cannot_run(pattern: str, hint: str) -> None:
    err = syntax_error(f'matches(x, "{pattern}")')
    assert err.offset == len("matches(x, ")
    assert hint in err.message
    assert "RE2" in err.message


def test_unsupported_regex_names_file_line_and_node() -> None:
    from support.flowkit import flow

    from ivr.errors import FlowErrors

    with pytest.raises(FlowErrors) as info:
        flow("""
            start: b
            nodes:
              b:
                branch: [{if: 'matches(caller_name, "(?=x).*")', goto: y}]
                else: y
              y: {play: "Y.", next: hangup}
        """)
    text = str(info.value)
    assert "test.yaml:5:" in text
    assert "node 'b'" in text
    assert "lookahead" in text
