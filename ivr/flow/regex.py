"""Flow authors' regular expressions, run by RE2: time linear in the text, whatever the pattern.

Caller-controlled text (display names, digits, back-office values up to 1 MB) meets these
patterns on the event loop, where a backtracking engine could stall every call on one pattern
like ``([0-9]+)+``. RE2 never backtracks; the price is that backreferences and lookaround do
not exist, which :func:`compile_flow_regex` reports when the flow is loaded.

    regex = compile_flow_regex("[0-9]{4}")
    regex.fullmatch("1234") is not None   # True, like re.Pattern.fullmatch
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import re2

from ivr.errors import PatternError

__all__ = ["DIALECT", "FlowRegex", "Matcher", "compile_flow_regex"]

DIALECT = "flow patterns are RE2 syntax: no backreferences or lookaround (lookahead, lookbehind)"

# RE2's message prefix -> what the flow author wrote that RE2 cannot run.
_HINTS = (
    *(
        (f"invalid escape sequence: \\{d}", "backreferences (\\1) are not supported")
        for d in "123456789"
    ),
    ("invalid perl operator: (?P", "backreferences ((?P=name)) are not supported"),
    ("invalid perl operator: (?=", "lookahead (?=...) is not supported"),
    ("invalid perl operator: (?!", "lookahead (?!...) is not supported"),
    ("invalid perl operator: (?<=", "lookbehind (?<=...) is not supported"),
    ("invalid perl operator: (?<!", "lookbehind (?<!...) is not supported"),
    ("invalid repetition size", "a repetition is too large (up to {1000}, nested ones multiply)"),
)


class Matcher(Protocol):
    """What nodes need of a compiled pattern (``re.Pattern`` and :class:`FlowRegex` fit)."""

    @property
    def pattern(self) -> str: ...

    def fullmatch(self, text: str, /) -> object | None: ...


@dataclass(frozen=True)
class FlowRegex:
    """A compiled RE2 pattern with the ``re.Pattern`` methods flows use."""

    pattern: str
    _compiled: Any = field(repr=False, compare=False)

    def fullmatch(self, text: str, /) -> object | None:
        """The match when the whole of ``text`` matches, else None (like ``re``)."""
        match: object | None = self._compiled.fullmatch(text)
        return match


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the error is ours to report, not a line on stderr
    return options


_OPTIONS = _options()


def compile_flow_regex(pattern: str) -> FlowRegex:
    """Compile ``pattern`` with RE2; raise :class:`PatternError` saying what to change."""
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise PatternError(_explain(exc)) from None
    return FlowRegex(pattern, compiled)


def _explain(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    reason = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    hint = next((hint for prefix, hint in _HINTS if reason.startswith(prefix)), reason)
    return f"{hint} ({DIALECT})"
