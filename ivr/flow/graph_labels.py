"""The text of a flow picture: what each node's box says, and how text is written in DOT.

Labels are Graphviz HTML-like labels, XML-escaped here, so quotes, ``<``, ``&`` and Chinese text
in prompts and conditions draw as written; long prompts, conditions and paths are shortened.
DOT ids and quoted strings are escaped the same way. :mod:`ivr.flow.graph` puts them together.
"""

from __future__ import annotations

import re

from ivr.flow import model as m
from ivr.flow.hours import DAYS, BusinessHours
from ivr.flow.model_values import PromptSpec, SayValue
from ivr.flow.queue_node import QueueNode

__all__ = [
    "LABEL_MAX",
    "PLAIN_ID",
    "DotIds",
    "dot_quote",
    "html_escape",
    "html_lines",
    "node_details",
    "shorten",
]

LABEL_MAX = 36  # characters of a prompt, condition or path shown in a label

PLAIN_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # usable as it is in DOT and SVG ids
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


# --- what a node's box says -------------------------------------------------------------------


def node_details(node: object) -> list[str]:
    """A line or two that tells what the node does, for the label."""
    match node:
        case m.PlayNode():
            return [_prompt_text(node.prompt)] + (["served"] if node.served else [])
        case m.MenuNode():
            inputs = " + ".join(node.inputs) if node.inputs != ("dtmf",) else ""
            return [_prompt_text(node.prompt)] + ([inputs] if inputs else [])
        case m.CollectNode():
            n = (
                f"{node.min_digits}"
                if node.min_digits == node.max_digits
                else f"{node.min_digits}-{node.max_digits}"
            )
            return [f"{n} digits into {node.into}" + (" (masked)" if node.sensitive else "")]
        case m.SetNode():
            return [", ".join(f"{k} = {v.source}" for k, v in node.assign.items())]
        case m.CallNode():
            return [f"flow {node.flow}"]
        case m.HoursNode():
            return _hours_lines(node.hours)
        case m.HttpNode():
            return [f"{node.method} {node.path.source}"]
        case m.TransferNode():
            return [f"to {node.to}"]
        case m.HangupNode():
            return [node.outcome.replace("_", " ")] if node.outcome else []
        case QueueNode():
            return [f"queue {node.queue}"] + ([f"then survey {node.survey}"] if node.survey else [])
        case m.SurveyNode():
            return [f"survey {node.survey}"]
    out = []  # a kind added after this module
    for attr in ("queue", "survey", "to"):
        value = getattr(node, attr, None)
        if isinstance(value, str) and value:
            out.append(f"{attr} {value}")
    return out


def _prompt_text(prompt: PromptSpec) -> str:
    out = []
    for part in prompt.parts(prompt.default_language):
        if isinstance(part, SayValue):
            out.append(f"{{{part.variable}}}")
        elif part.kind == "text":
            out.append(part.value)
        else:
            out.append(f"[{part.kind} {part.value}]")
    return " ".join(out)


def _hours_lines(hours: BusinessHours) -> list[str]:
    """``mon-fri 08:00-20:00`` style lines, consecutive days with equal windows grouped."""
    groups: list[tuple[int, int, tuple[tuple[int, int], ...]]] = []
    for day, windows in enumerate(hours.week):
        if windows and groups and groups[-1][2] == windows and groups[-1][1] == day - 1:
            groups[-1] = (groups[-1][0], day, windows)
        elif windows:
            groups.append((day, day, windows))
    lines = []
    for first, last, windows in groups:
        days = DAYS[first] if first == last else f"{DAYS[first]}-{DAYS[last]}"
        lines.append(f"{days} {', '.join(f'{_hhmm(a)}-{_hhmm(b)}' for a, b in windows)}")
    if hours.holidays:
        lines.append(f"{len(hours.holidays)} holiday period(s)")
    if hours.calendar is not None:
        lines.append(f"{hours.calendar.name} holidays")
    return lines or ["always closed"]


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# --- writing text in DOT ----------------------------------------------------------------------


class DotIds:
    """DOT ids: a node id that is a plain identifier is used as is (it shows as the SVG
    ``<title>``); anything else gets a quoted, escaped id."""

    def of(self, name: str) -> str:
        """The DOT id of a node or pseudo-target named ``name``."""
        return (
            name
            if PLAIN_ID.fullmatch(name) and name.lower() not in _DOT_KEYWORDS
            else self.quote(name)
        )

    @staticmethod
    def quote(name: str) -> str:
        """``name`` as a DOT quoted string."""
        return dot_quote(name)


_DOT_KEYWORDS = frozenset({"node", "edge", "graph", "digraph", "subgraph", "strict"})


def dot_quote(text: str) -> str:
    """A DOT quoted string. Inside quotes ``\\"`` is the only escape and every other backslash
    stays as it is; a backslash at the very end would swallow the closing quote, so it gets a
    space after it."""
    text = _CONTROL.sub(" ", text).replace("\n", " ").replace("\r", " ")
    text = text.replace('"', '\\"')
    if text.endswith("\\"):
        text += " "
    return f'"{text}"'


def html_escape(text: str) -> str:
    """Text for a Graphviz HTML-like label: XML-escaped, no control characters."""
    text = _CONTROL.sub(" ", text).replace("\r", " ").replace("\n", " ")
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def html_lines(lines: list[str], *, bold_first: bool = False) -> str:
    """Lines of an HTML-like label, escaped, the first one bold if asked."""
    out = [html_escape(line) for line in lines]
    if bold_first and out:
        out[0] = f"<B>{out[0]}</B>"
    return "<BR/>".join(out)


def shorten(text: str, limit: int = LABEL_MAX) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis when longer."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
