"""Flow pictures: a :class:`Flow` drawn as a Graphviz graph (DOT text, SVG through ``dot``).

Every node is a box labelled with its id and kind (shape and colour per kind); every way out of
a node is an arrow labelled with what takes the call there: menu digits and spoken words,
``no_input``/``no_match``/``otherwise``, branch conditions (shortened), hours windows
(``open``/``closed``/``holiday``), ``on_error`` of an http lookup, ``on_fail`` of a transfer,
``next`` (unlabelled when it is the node's only way on), and the sub-flow of a ``call``.
Special targets are small end nodes: ``hangup``, ``return``, and one box per called sub-flow.

Two kinds of problem are highlighted in red/grey, with the reason written in the box so the
picture also reads in black and white:

* **dead end**: no path from the node reaches an end of the call (a ``hangup`` node or target,
  a ``transfer`` or ``queue`` to an agent, or ``return`` in a sub-flow); a caller there can
  only hang up themselves;
* **unreachable**: no path from ``start`` reaches the node.

Labels are Graphviz HTML-like labels, XML-escaped here, so quotes, ``<``, ``&`` and Chinese text
in prompts and conditions draw as written. SVG comes from the ``dot`` program of the Debian
package ``graphviz``, run with a timeout.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.errors import GraphvizError, IvrError
from ivr.flow import model as m
from ivr.flow.hours import DAYS, BusinessHours

__all__ = [
    "DOT_TIMEOUT_S",
    "Edge",
    "FlowAnalysis",
    "add_graph_parser",
    "analyse",
    "flow_dot",
    "flow_edges",
    "flow_svg",
    "node_kind",
    "render_dot",
]

DOT_TIMEOUT_S = 20.0
GRAPHVIZ_PACKAGE = "graphviz"
LABEL_MAX = 36  # characters of a prompt, condition or path shown in a label

EdgeStyle = m.EdgeStyle


@dataclass(frozen=True)
class Edge:
    """One arrow: ``source`` node id to ``target`` (a node id, ``hangup``, ``return``, or
    ``flow:NAME`` for a called sub-flow), with a label and a style."""

    source: str
    target: str
    label: str
    style: EdgeStyle


@dataclass(frozen=True)
class FlowAnalysis:
    """Which nodes are never reached from start, and which can never end the call."""

    unreachable: frozenset[str] = field(default_factory=frozenset)
    dead_ends: frozenset[str] = field(default_factory=frozenset)


# --- kinds and styles -------------------------------------------------------------------------

# kind -> (shape, extra style, fill colour); pale fills keep black text readable
_NODE_STYLE: dict[str, tuple[str, str, str]] = {
    "play": ("box", "rounded", "#e3eefb"),
    "menu": ("box", "rounded,bold", "#fff1c4"),
    "collect": ("parallelogram", "", "#fde3cf"),
    "set": ("note", "", "#eeeeee"),
    "branch": ("diamond", "", "#ece0f8"),
    "goto": ("cds", "", "#eeeeee"),
    "call": ("component", "", "#d9f1f4"),
    "hours": ("hexagon", "", "#dff2dc"),
    "http": ("cylinder", "", "#f1e4f6"),
    "transfer": ("doubleoctagon", "", "#cdeccd"),
    "hangup": ("octagon", "", "#dddddd"),
    "queue": ("doubleoctagon", "", "#d3e9f6"),
    "survey": ("house", "", "#f9e3ee"),
}
_OTHER_STYLE = ("box", "", "#ffffff")  # a node kind this module does not know yet

# style -> (colour, line style)
_EDGE_STYLE: dict[EdgeStyle, tuple[str, str]] = {
    "next": ("#333333", "solid"),
    "option": ("#1f4e8c", "solid"),
    "retry": ("#8a5a00", "dashed"),
    "branch": ("#5b2c83", "solid"),
    "hours": ("#2e6b2a", "solid"),
    "error": ("#b00020", "dashed"),
    "back": ("#555555", "dotted"),
    "call": ("#0b6470", "dashed"),
}

DEAD_END_COLOUR = "#c62828"
DEAD_END_FILL = "#ffe3e3"
UNREACHABLE_COLOUR = "#757575"

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def node_kind(node: m.Node) -> str:
    """``menu``, ``play``, ``transfer``... (``say`` nodes are ``play`` nodes)."""
    return node.kind


# --- edges ------------------------------------------------------------------------------------


def flow_edges(flow: m.Flow) -> list[Edge]:
    """Every arrow of the flow's picture, in node order; ``back`` options are resolved to the
    menus that can lead to the menu (an arrow to each)."""
    out: list[Edge] = []
    into: dict[str, set[str]] | None = None  # built once, at the first `back` option
    for node in flow.nodes.values():
        for target, label, style in _node_edges(node):
            if target == m.REPEAT:
                out.append(Edge(node.id, node.id, label, "option"))
            elif target == m.BACK:
                into = _incoming(flow) if into is None else into
                previous = _previous_menus(flow, node.id, into) or [m.BACK]
                out += [Edge(node.id, p, label, "back") for p in previous]
            else:
                out.append(Edge(node.id, target, label, style))
    return out


def _node_edges(node: m.Node) -> Iterator[tuple[str, str, EdgeStyle]]:
    for e in node.exits():
        label = f"{e.label} {_short(e.condition)}" if e.condition else e.label
        yield e.target, _short(label, 2 * LABEL_MAX), e.style


def _incoming(flow: m.Flow) -> dict[str, set[str]]:
    """The nodes that lead to each target."""
    into: dict[str, set[str]] = {}
    for node in flow.nodes.values():
        for target, _, _ in _node_edges(node):
            into.setdefault(target, set()).add(node.id)
    return into


def _previous_menus(flow: m.Flow, menu_id: str, into: dict[str, set[str]]) -> list[str]:
    """Menus from which ``menu_id`` is reached without passing through another menu: where a
    ``back`` option in ``menu_id`` can lead."""
    found: list[str] = []
    seen = {menu_id}
    todo = deque(sorted(into.get(menu_id, ())))
    while todo:
        nid = todo.popleft()
        if nid in seen:
            continue
        seen.add(nid)
        if isinstance(flow.nodes.get(nid), m.MenuNode):
            found.append(nid)
        else:
            todo += sorted(into.get(nid, ()))
    return sorted(found)


# --- analysis ---------------------------------------------------------------------------------


def analyse(flow: m.Flow, edges: Iterable[Edge] | None = None) -> FlowAnalysis:
    """Unreachable nodes (not reached from start) and dead ends (nodes from which no path
    reaches a hangup, a transfer, a queue or a return)."""
    edge_list = list(flow_edges(flow) if edges is None else edges)
    forward: dict[str, set[str]] = {}
    backward: dict[str, set[str]] = {}
    for e in edge_list:
        forward.setdefault(e.source, set()).add(e.target)
        backward.setdefault(e.target, set()).add(e.source)

    reached = _closure([flow.start], forward)
    ends = [nid for nid, n in flow.nodes.items() if n.ends_call]
    ends += [m.HANGUP, m.RETURN]
    can_end = _closure(ends, backward)
    return FlowAnalysis(
        unreachable=frozenset(n for n in flow.nodes if n not in reached),
        dead_ends=frozenset(n for n in flow.nodes if n not in can_end),
    )


def _closure(roots: Iterable[str], graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        nid = todo.pop()
        if nid not in seen:
            seen.add(nid)
            todo += graph.get(nid, ())
    return seen


# --- DOT --------------------------------------------------------------------------------------


def flow_dot(flow: m.Flow) -> str:
    """The flow as Graphviz DOT text (HTML-like labels, every user text escaped)."""
    edges = flow_edges(flow)
    problems = analyse(flow, edges)
    ids = _DotIds()
    lines = [
        f"digraph {ids.quote('flow_' + flow.name)} {{",
        '  graph [rankdir=TB, nodesep=0.35, ranksep=0.45, fontname="Helvetica,Arial,sans-serif",'
        ' fontsize=16, labelloc=t, charset="UTF-8", bgcolor="white",',
        f"         label=<{_html_lines(_title(flow, problems), bold_first=True)}>];",
        '  node [fontname="Helvetica,Arial,sans-serif", fontsize=12, style=filled,'
        ' color="#444444", penwidth=1.2, margin="0.15,0.06"];',
        '  edge [fontname="Helvetica,Arial,sans-serif", fontsize=10, arrowsize=0.7];',
    ]
    for node in flow.nodes.values():
        lines.append(_node_statement(flow, node, problems, ids))
    for target in _pseudo_targets(flow, edges):
        lines.append(_pseudo_statement(target, ids))
    for (source, target, style), labels in _merge(edges).items():
        colour, line = _EDGE_STYLE[style]
        attrs = [f'color="{colour}"', f'fontcolor="{colour}"', f"style={line}"]
        text = [lbl for lbl in labels if lbl]
        if text:
            attrs.append(f"label=<{_html_lines(text)}>")
        if style == "back":
            attrs.append("constraint=false")
        if source == target:
            attrs.append("dir=forward")
        lines.append(f"  {ids.of(source)} -> {ids.of(target)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _title(flow: m.Flow, problems: FlowAnalysis) -> list[str]:
    out = [f"{flow.name}", f"version {flow.version} · start: {flow.start}"]
    n_dead, n_lost = len(problems.dead_ends), len(problems.unreachable)
    if n_dead or n_lost:
        out.append(f"⚠ {n_dead} dead end(s), {n_lost} unreachable node(s)")
    return out


def _node_statement(flow: m.Flow, node: m.FlowNode, problems: FlowAnalysis, ids: _DotIds) -> str:
    kind = node_kind(node)
    shape, style, fill = _NODE_STYLE.get(kind, _OTHER_STYLE)
    styles = ["filled", *filter(None, style.split(","))]
    colour, pen, fontcolour = "#444444", 1.2, "#111111"
    classes = ["ivr-node", f"kind-{kind}"]
    extra: list[str] = []
    if node.id == flow.start:
        classes.append("start")
        pen = 2.2
    if node.id in problems.dead_ends:
        classes.append("dead-end")
        colour, fill, pen = DEAD_END_COLOUR, DEAD_END_FILL, 3.0
        extra.append("⚠ dead end: cannot end the call")
    if node.id in problems.unreachable:
        classes.append("unreachable")
        styles.append("dashed")
        colour, fontcolour = UNREACHABLE_COLOUR, "#444444"
        extra.append("unreachable from start")
    label = _node_label(node, kind, extra)
    attrs = [
        f"label=<{label}>",
        f"shape={shape}",
        f'style="{",".join(dict.fromkeys(styles))}"',
        f'fillcolor="{fill}"',
        f'color="{colour}"',
        f'fontcolor="{fontcolour}"',
        f"penwidth={pen}",
        f"class={_quote(' '.join(classes))}",
    ]
    if _IDENT.fullmatch(node.id):
        attrs.append(f'id="ivr-node-{node.id}"')
    return f"  {ids.of(node.id)} [{', '.join(attrs)}];"


def _node_label(node: m.FlowNode, kind: str, extra: list[str]) -> str:
    head = f"<B>{_esc(node.id)}</B>"
    kind_line = f'<FONT POINT-SIZE="10" COLOR="#444444"><I>{_esc(kind)}</I></FONT>'
    details = [_short(d) for d in _details(node)]
    parts = [head, kind_line]
    parts += [f'<FONT POINT-SIZE="10">{_esc(d)}</FONT>' for d in details]
    parts += [f'<FONT POINT-SIZE="10"><B>{_esc(x)}</B></FONT>' for x in extra]
    return "<BR/>".join(parts)


def _details(node: object) -> list[str]:
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
            return [node.outcome.replace("_", " ")]
        case m.QueueNode():
            return [f"queue {node.queue}"] + ([f"then survey {node.survey}"] if node.survey else [])
        case m.SurveyNode():
            return [f"survey {node.survey}"]
    out = []  # a kind added after this module
    for attr in ("queue", "survey", "to"):
        value = getattr(node, attr, None)
        if isinstance(value, str) and value:
            out.append(f"{attr} {value}")
    return out


def _prompt_text(prompt: m.PromptSpec) -> str:
    out = []
    for part in prompt.parts(prompt.default_language):
        if isinstance(part, m.SayValue):
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
    return lines or ["always closed"]


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _pseudo_targets(flow: m.Flow, edges: list[Edge]) -> list[str]:
    return list(dict.fromkeys(e.target for e in edges if e.target not in flow.nodes))


def _pseudo_statement(target: str, ids: _DotIds) -> str:
    if target.startswith("flow:"):
        label = f'<FONT POINT-SIZE="10"><I>sub-flow</I></FONT><BR/><B>{_esc(target[5:])}</B>'
        attrs = 'shape=tab, style="filled,dashed", fillcolor="#f2fbfc", color="#0b6470"'
        cls = "ivr-subflow"
    elif target in (m.HANGUP, m.RETURN):
        label = f"<B>{target}</B>"
        attrs = 'shape=doublecircle, fillcolor="#f5f5f5", color="#333333", fontsize=10'
        cls = "ivr-end"
    elif target == m.BACK:
        label = "<I>previous menu</I>"
        attrs = 'shape=plaintext, style="", fontsize=10'
        cls = "ivr-back"
    else:  # a target that is not a node (the loader rejects those; drawn all the same)
        label = f"<B>{_esc(target)}</B><BR/>missing node"
        attrs = (
            f'shape=box, style="filled,dashed", fillcolor="{DEAD_END_FILL}", '
            f'color="{DEAD_END_COLOUR}"'
        )
        cls = "ivr-missing"
    return f'  {ids.of(target)} [label=<{label}>, {attrs}, class="{cls}"];'


def _merge(edges: list[Edge]) -> dict[tuple[str, str, EdgeStyle], list[str]]:
    """Parallel arrows of one style become one arrow with every label (``1``, ``2``)."""
    out: dict[tuple[str, str, EdgeStyle], list[str]] = {}
    for e in edges:
        labels = out.setdefault((e.source, e.target, e.style), [])
        if e.label not in labels:
            labels.append(e.label)
    return out


class _DotIds:
    """DOT ids: a node id that is a plain identifier is used as is (it shows as the SVG
    ``<title>``); anything else gets a quoted, escaped id."""

    def of(self, name: str) -> str:
        return (
            name
            if _IDENT.fullmatch(name) and name.lower() not in _DOT_KEYWORDS
            else self.quote(name)
        )

    @staticmethod
    def quote(name: str) -> str:
        return _quote(name)


_DOT_KEYWORDS = frozenset({"node", "edge", "graph", "digraph", "subgraph", "strict"})


def _quote(text: str) -> str:
    """A DOT quoted string. Inside quotes ``\\"`` is the only escape and every other backslash
    stays as it is; a backslash at the very end would swallow the closing quote, so it gets a
    space after it."""
    text = _CONTROL.sub(" ", text).replace("\n", " ").replace("\r", " ")
    text = text.replace('"', '\\"')
    if text.endswith("\\"):
        text += " "
    return f'"{text}"'


def _esc(text: str) -> str:
    """Text for a Graphviz HTML-like label: XML-escaped, no control characters."""
    text = _CONTROL.sub(" ", text).replace("\r", " ").replace("\n", " ")
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _html_lines(lines: list[str], *, bold_first: bool = False) -> str:
    out = [_esc(line) for line in lines]
    if bold_first and out:
        out[0] = f"<B>{out[0]}</B>"
    return "<BR/>".join(out)


def _short(text: str, limit: int = LABEL_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- SVG --------------------------------------------------------------------------------------


def render_dot(dot_text: str, fmt: str = "svg", *, timeout_s: float = DOT_TIMEOUT_S) -> bytes:
    """Run Graphviz ``dot -T<fmt>`` on DOT text and return its output (SVG, PNG, ...);
    raises :class:`GraphvizError` when ``dot`` is missing, fails or times out."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizError(
            "Graphviz 'dot' was not found on PATH; install the Debian package "
            f"'{GRAPHVIZ_PACKAGE}' (apt-get install {GRAPHVIZ_PACKAGE}, or make deps)"
        )
    try:
        done = subprocess.run(
            [exe, f"-T{fmt}"],
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GraphvizError(
            f"Graphviz 'dot' took longer than {timeout_s:g} s; the flow is too large to draw"
        ) from None
    except OSError as exc:
        raise GraphvizError(f"cannot run Graphviz 'dot' ({exe}): {exc}") from None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
        raise GraphvizError(f"Graphviz 'dot' failed: {reason}")
    return done.stdout


def flow_svg(flow: m.Flow, *, timeout_s: float = DOT_TIMEOUT_S) -> str:
    """The flow's picture as SVG text (an XML document, as ``dot -Tsvg`` writes it)."""
    return render_dot(flow_dot(flow), "svg", timeout_s=timeout_s).decode("utf-8")


# --- CLI --------------------------------------------------------------------------------------


def add_graph_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ivr graph FLOW.yaml [-o out.svg] [--format svg|dot]`` (sets ``func``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "graph",
        help="draw a flow as a picture (SVG through Graphviz, or DOT text)",
        description="Draw a flow: nodes by kind, arrows labelled with keys, words and "
        "conditions, dead ends and unreachable nodes in red/grey. SVG needs Graphviz "
        f"'dot' (Debian package '{GRAPHVIZ_PACKAGE}').",
    )
    p.add_argument("flow", help="flow file, e.g. flows/bank.yaml")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    p.add_argument(
        "--format",
        choices=("svg", "dot"),
        help="svg or dot (default: from the output's suffix .dot/.gv, else svg)",
    )
    p.set_defaults(func=_graph_command)
    return p


def _graph_command(args: argparse.Namespace) -> int:
    from ivr.flow.loader import load_flow

    fmt = args.format or (
        "dot" if args.output and Path(args.output).suffix.lower() in (".dot", ".gv") else "svg"
    )
    flow = load_flow(args.flow)  # FlowErrors: ivr's main prints file:line:col and exits 2
    text = flow_dot(flow) if fmt == "dot" else flow_svg(flow)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise IvrError(f"cannot write {args.output}: {exc}") from None
        print(f"wrote {args.output} ({fmt}, {len(flow.nodes)} nodes)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
