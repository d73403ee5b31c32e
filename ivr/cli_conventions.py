"""What every ``ivr`` command has in common: help that shows defaults, and input files checked.

:class:`Parser` is the ``ivr`` parser's class; ``add_subparsers`` makes each command's parser
of the same class, so a command added anywhere (``add_graph_parser``...) gets
:class:`HelpFormatter` without asking; :func:`apply_conventions` gives it to those that asked
for another formatter too, and marks the files and directories each command reads
(:data:`INPUTS`; ``--config`` everywhere): :func:`missing_input` names the first one that is
not there, before the command runs ("no such file: PATH", not a traceback or a command that
goes on without it).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

# the files and directories each command reads, by argument (dest); --config everywhere
INPUTS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("validate",): ("paths",),
    ("simulate",): ("flow", "http_stub"),
    ("prompts", "build"): ("flows",),
    ("stt",): ("file", "flow", "model"),
    ("graph",): ("flow", "coverage"),
    ("test",): ("paths",),
    ("campaign", "start"): ("file",),
    ("lab", "call"): ("wav",),
}
_INPUTS_DEST = "_input_dests"  # where each command's parser leaves its list in the namespace


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """An option's help ends with its default unless it has none (``None``, ``False``,
    empty) or the help already says it; a description written on several lines keeps its
    layout (examples, lists), one written as a paragraph is wrapped to the terminal."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip("\n"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default: Any = action.default
        if default is None or default is False or default in ("", [], argparse.SUPPRESS):
            return text
        if "default" in text.lower():
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text  # a required positional: its default is never used
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """An ``argparse`` parser with :class:`HelpFormatter` unless told otherwise."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """``parser`` and every command under it, with its words (``("prompts", "build")``)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def apply_conventions(parser: argparse.ArgumentParser) -> None:
    """Give each command's parser :class:`HelpFormatter` and tell it which of its arguments
    name files it reads (for :func:`missing_input`)."""
    for path, sub in commands(parser):
        sub.formatter_class = HelpFormatter
        dests = {a.dest for a in sub._actions}
        wanted = ("config", *INPUTS.get(path, ()))
        sub.set_defaults(**{_INPUTS_DEST: tuple(d for d in wanted if d in dests)})


def missing_input(args: argparse.Namespace) -> str | None:
    """The first file or directory the chosen command reads that does not exist."""
    for dest in getattr(args, _INPUTS_DEST, ()):
        value = getattr(args, dest, None)
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is not None and str(item) != "-" and not os.path.exists(item):
                return str(item)
    return None
