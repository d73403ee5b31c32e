"""YAML syntax errors in ops words, at the line where the mistake is.

PyYAML reports where its parser gave up, in its own words: a key without ``:`` shows up one
line later as "mapping values are not allowed here"; an unclosed quote swallows the lines
below and fails further down; a line indented one space too far is "expected <block end>, but
found '<block mapping start>'". :func:`explain` looks at the tokens read before the failure
and the lines around it, names the likely mistake (a tab, a missing ``:`` or space, a value
that needs quotes, a quote or bracket never closed, an indentation slip) and points at it.
Anything it does not recognise keeps PyYAML's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["SyntaxProblem", "explain"]

KEY = re.compile(r"[\w\"'-]+")  # what a node id or key looks like (not a stray sentence)
NOT_A_KEY = "is not a 'key: value'; write it as one, or start the line with '#' for a comment"


@dataclass(frozen=True)
class SyntaxProblem:
    """What is wrong (and how to fix it, after "; "), at a 1-based line and column."""

    message: str
    line: int
    col: int


def explain(exc: yaml.YAMLError, text: str) -> SyntaxProblem:
    """The mistake behind a PyYAML error in ``text``."""
    problem = str(getattr(exc, "problem", None) or exc)
    context = str(getattr(exc, "context", None) or "")
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return SyntaxProblem(f"YAML syntax error: {problem}", 1, 1)
    reader = _Lines(text.splitlines())
    found = (mark.line, mark.column)
    opened = getattr(exc, "context_mark", None)
    before, bracket = _scan(text, found)
    return (
        _tab(reader, found)
        or _unclosed_quote(context, opened)
        or _quote_runs_on(before)
        or _flow_collection(problem, bracket, found)
        or _quote_inside(before, reader, found)
        or _key_without_colon(context, reader, opened)
        or _mapping_value(problem, reader, before, found)
        or _indentation(problem, reader, found)
        or _stray_text(problem, before)
        or _stray_character(problem, found)
        or SyntaxProblem(f"YAML syntax error: {problem}", found[0] + 1, found[1] + 1)
    )


class _Lines:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def text(self, n: int) -> str:
        """0-based line ``n``, "" past the end."""
        return self.lines[n] if 0 <= n < len(self.lines) else ""

    def indent(self, n: int) -> int:
        line = self.text(n)
        return len(line) - len(line.lstrip(" "))

    def key(self, n: int) -> str:
        """What a line starts with: its key, or its first words."""
        body = self.text(n).strip()
        key, colon, _ = body.partition(":")
        return key if colon and key else body[:30]


def _tab(lines: _Lines, found: tuple[int, int]) -> SyntaxProblem | None:
    line = lines.text(found[0])
    lead = line[: len(line) - len(line.lstrip(" \t"))]
    if "\t" in lead:
        return SyntaxProblem(
            "a tab in the indentation; YAML indents with spaces only: replace the tab with spaces",
            found[0] + 1,
            lead.index("\t") + 1,
        )
    if found[1] < len(line) and line[found[1]] == "\t":
        return SyntaxProblem(
            "a tab character here; YAML allows only spaces between items: replace it with a space",
            found[0] + 1,
            found[1] + 1,
        )
    return None


def _unclosed_quote(context: str, opened: Any) -> SyntaxProblem | None:
    """The file ended inside a quoted text."""
    if "quoted scalar" not in context or opened is None:
        return None
    return SyntaxProblem(
        "this quote is never closed; end the text with the same quote mark",
        opened.line + 1,
        opened.column + 1,
    )


def _scan(text: str, found: tuple[int, int]) -> tuple[yaml.ScalarToken | None, yaml.Token | None]:
    """What the scanner read before the parser failed at ``found``: the last value or key, and
    the innermost ``{`` or ``[`` still open."""
    last = None
    brackets: list[yaml.Token] = []
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if (token.start_mark.line, token.start_mark.column) >= found:
                break
            if isinstance(token, yaml.ScalarToken):
                last = token
            elif isinstance(token, yaml.FlowMappingStartToken | yaml.FlowSequenceStartToken):
                brackets.append(token)
            elif (
                isinstance(token, yaml.FlowMappingEndToken | yaml.FlowSequenceEndToken) and brackets
            ):
                brackets.pop()
    except yaml.YAMLError:
        pass
    return last, brackets[-1] if brackets else None


def _quote_runs_on(token: yaml.ScalarToken | None) -> SyntaxProblem | None:
    """A quoted text just before the failure that runs over several lines: never closed."""
    if token is None or token.style not in ('"', "'"):
        return None
    start, end = token.start_mark, token.end_mark
    if start.line == end.line:
        return None
    return SyntaxProblem(
        f"the quote opened here is not closed on this line; add the closing {token.style} at "
        "the end of the text",
        start.line + 1,
        start.column + 1,
    )


def _quote_inside(
    token: yaml.ScalarToken | None, lines: _Lines, found: tuple[int, int]
) -> SyntaxProblem | None:
    """A quoted text closed too early by a quote mark inside it, more text after it."""
    if token is None or token.style not in ('"', "'") or token.end_mark.line != found[0]:
        return None
    q = token.style
    line = lines.text(found[0])
    start = token.start_mark.column
    inner = line[start + 1 : line.rfind(q)] if line.rfind(q) > token.end_mark.column else ""
    other = "'" if q == '"' else '"'
    if inner and other not in inner:
        fix = f"quote it with {other} instead: {other}{inner}{other}"
    else:
        fix = "write it twice ('It''s')" if q == "'" else 'write it \\"'
    return SyntaxProblem(
        f"the text ends at this {q} but more follows on the line; for a {q} inside the text, {fix}",
        token.end_mark.line + 1,
        token.end_mark.column,
    )


def _key_without_colon(context: str, lines: _Lines, opened: Any) -> SyntaxProblem | None:
    """``next hangup``: a key and its value with no ``:`` between them."""
    if "simple key" not in context or opened is None:
        return None
    body = lines.text(opened.line)[opened.column :].split(" #")[0].rstrip()
    key, space, value = body.partition(" ")
    fixed = f"{key}: {value.strip()}" if space else f"{key}:"
    return SyntaxProblem(
        f"{body!r} has no ':' after its key; write {fixed!r}", opened.line + 1, opened.column + 1
    )


def _flow_collection(
    problem: str, bracket: yaml.Token | None, found: tuple[int, int]
) -> SyntaxProblem | None:
    """``{...}`` or ``[...]`` never closed, closed by the other bracket, or items not
    separated by commas."""
    if bracket is None:
        return None
    mapping = isinstance(bracket, yaml.FlowMappingStartToken)
    open_, close = ("{", "}") if mapping else ("[", "]")
    start = bracket.start_mark
    if found[0] > start.line or "<stream end>" in problem:
        return SyntaxProblem(
            f"the '{open_}' opened here is never closed; add '{close}' after its last item",
            start.line + 1,
            start.column + 1,
        )
    other = "]" if mapping else "}"
    if problem.endswith(f"'{other}'"):
        return SyntaxProblem(
            f"the '{open_}' opened at column {start.column + 1} is closed by '{other}'; "
            f"close it with '{close}'",
            found[0] + 1,
            found[1] + 1,
        )
    if "expected ','" in problem:
        return SyntaxProblem(
            f"expected ',' or '{close}' here; separate the items inside '{open_}...{close}' "
            "with commas",
            found[0] + 1,
            found[1] + 1,
        )
    return None


def _mapping_value(
    problem: str, lines: _Lines, token: yaml.ScalarToken | None, found: tuple[int, int]
) -> SyntaxProblem | None:
    """A ``:`` where YAML reads text: the line above is missing a ``:`` or a space, or this
    line is indented under a value, or a value holds ``: `` and needs quotes."""
    if "mapping values are not allowed" not in problem or token is None or token.style:
        return None
    line, col = token.start_mark.line, token.start_mark.column
    first = lines.text(line)[col:].split(" #")[0].rstrip()
    if line == found[0]:
        return SyntaxProblem(
            f"the value {first!r} contains ': '; put it in quotes: \"{first}\"", line + 1, col + 1
        )
    if ":" in first:
        colon = first.index(":")
        fixed = f"{first[:colon]}: {first[colon + 1 :]}"
        return SyntaxProblem(
            f"no space after ':' in {first!r}; write {fixed!r}", line + 1, col + colon + 2
        )
    if col == lines.indent(line) and KEY.fullmatch(first):
        return SyntaxProblem(
            f"{first!r} has no ':' after it; write '{first}:'", line + 1, col + len(first) + 1
        )
    if col == lines.indent(line):
        return SyntaxProblem(f"{first!r} {NOT_A_KEY}", line + 1, col + 1)
    key, here = lines.key(line), lines.key(found[0])
    return SyntaxProblem(
        f"'{here}' is indented more than '{key}' on line {line + 1}, so YAML reads it as part "
        f"of that value; line '{here}' up with '{key}'",
        found[0] + 1,
        lines.indent(found[0]) + 1,
    )


def _indentation(problem: str, lines: _Lines, found: tuple[int, int]) -> SyntaxProblem | None:
    """A line indented to a column no line above it uses."""
    if not problem.startswith("expected <block end>"):
        return None
    n, indent = found[0], lines.indent(found[0])
    levels: list[str] = []
    below = indent + 10_000
    for above in range(n - 1, -1, -1):
        body = lines.text(above).strip()
        if not body or body.startswith("#") or lines.indent(above) >= below:
            continue
        below = lines.indent(above)
        levels.append(f"{below} ('{lines.key(above)}', line {above + 1})")
        if len(levels) == 3 or below == 0:
            break
    return SyntaxProblem(
        f"'{lines.key(n)}' is indented {indent} spaces, which lines up with no line above it; "
        f"indent it like the line it belongs with: {' or '.join(levels)}",
        n + 1,
        indent + 1,
    )


def _stray_text(problem: str, token: yaml.ScalarToken | None) -> SyntaxProblem | None:
    """A line of text where the top level expects keys (often a comment missing its ``#``)."""
    if "expected '<document start>'" not in problem or token is None:
        return None
    return SyntaxProblem(
        f"{token.value!r} {NOT_A_KEY}",
        token.start_mark.line + 1,
        token.start_mark.column + 1,
    )


def _stray_character(problem: str, found: tuple[int, int]) -> SyntaxProblem | None:
    """A character that cannot start a value where it is: ``- a`` after a key on the same
    line, a lone ``:`` or ``,``, a backquote or ``@``."""
    where = found[0] + 1, found[1] + 1
    if "sequence entries are not allowed" in problem:
        return SyntaxProblem(
            "a '- ' list item cannot start here; write each '- item' on its own line under the "
            "key, or put the text in quotes",
            *where,
        )
    for words in ("expected the node content, but found ", "found character "):
        if problem.startswith(words):
            char = problem[len(words) :].split()[0]
            if char.startswith("'<"):  # a parser token name, not a character of the file
                return None
            return SyntaxProblem(
                f"{char} cannot start a value here; put the text in quotes, or remove the {char}",
                *where,
            )
    return None
