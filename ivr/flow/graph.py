"""Flow pictures: a :class:`Flow` drawn as a Graphviz graph (DOT text, SVG through ``dot``).

Every node is a box labelled with its id and kind (shape and colour per kind); every way out of
a node is an arrow labelled with what takes the call there: menu digits and spoken words,
``no_input``/``no_match``/``otherwise``, branch conditions (shortened), hours windows
(``open``/``closed``/``holiday``), ``on_error`` of an http lookup, ``on_fail`` of a transfer,
``next`` (unlabelled when it is the node's only way on), and the sub-flow of a ``call``.
Special targets are small end nodes: ``hangup``, ``return``, and one box per called sub-flow.

Dead ends and unreachable nodes (:mod:`ivr.flow.reachability`) are highlighted in red/grey,
with the reason written in the box so the picture also reads in black and white. The text of
the labels, escaped for DOT, comes from :mod:`ivr.flow.graph_labels`. SVG comes from the ``dot``
program of the Debian package ``graphviz``, run with a timeout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ivr.errors import GraphvizError, IvrError
from ivr.flow import model as m
from ivr.flow.coverage import Untested
from ivr.flow.graph_labels import (
    PLAIN_ID,
    DotIds,
    dot_quote,
    html_escape,
    html_lines,
    node_details,
    shorten,
)
from ivr.flow.model_values import BACK, HANGUP, RETURN
from ivr.flow.node import EdgeStyle, Node
from ivr.flow.reachability import Edge, FlowAnalysis, analyse, flow_edges

__all__ = [
    "DOT_TIMEOUT_S",
    "add_graph_parser",
    "flow_dot",
    "flow_svg",
    "node_kind",
    "render_dot",
]

DOT_TIMEOUT_S = 20.0
GRAPHVIZ_PACKAGE = "graphviz"


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
    "split": ("trapezium", "", "#ece0f8"),
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

UNTESTED_COLOUR = "#9e9e9e"  # flow test coverage: nodes and arrows no test walks
UNTESTED_FILL = "#f0f0f0"
DEAD_END_COLOUR = "#c62828"
DEAD_END_FILL = "#ffe3e3"
UNREACHABLE_COLOUR = "#757575"


def node_kind(node: Node) -> str:
    """``menu``, ``play``, ``transfer``... (``say`` nodes are ``play`` nodes)."""
    return node.kind


# --- DOT --------------------------------------------------------------------------------------


def flow_dot(flow: m.Flow, *, untested: Untested | None = None) -> str:
    """The flow as Graphviz DOT text (HTML-like labels, every user text escaped); with
    ``untested`` (:mod:`ivr.flow.coverage`), what no flow test walks is greyed out."""
    edges = flow_edges(flow)
    problems = analyse(flow, edges)
    ids = DotIds()
    lines = [
        f"digraph {ids.quote('flow_' + flow.name)} {{",
        '  graph [rankdir=TB, nodesep=0.35, ranksep=0.45, fontname="Helvetica,Arial,sans-serif",'
        ' fontsize=16, labelloc=t, charset="UTF-8", bgcolor="white",',
        f"         label=<{html_lines(_title(flow, problems, untested), bold_first=True)}>];",
        '  node [fontname="Helvetica,Arial,sans-serif", fontsize=12, style=filled,'
        ' color="#444444", penwidth=1.2, margin="0.15,0.06"];',
        '  edge [fontname="Helvetica,Arial,sans-serif", fontsize=10, arrowsize=0.7];',
    ]
    for node in flow.nodes.values():
        lines.append(_node_statement(flow, node, problems, ids, untested))
    for target in _pseudo_targets(flow, edges):
        lines.append(_pseudo_statement(target, ids))
    for (source, target, style), labels in _merge(edges).items():
        colour, line = _EDGE_STYLE[style]
        attrs = [f'color="{colour}"', f'fontcolor="{colour}"', f"style={line}"]
        text = [lbl for lbl in labels if lbl]
        if untested is not None:
            colour, line, text = _untested_arrow(untested, source, labels, colour, line)
            if colour == UNTESTED_COLOUR:
                attrs = [f'color="{colour}"', f'fontcolor="{colour}"', f"style={line}"]
                attrs.append('class="untested"')
        if text:
            attrs.append(f"label=<{html_lines(text)}>")
        if style == "back":
            attrs.append("constraint=false")
        if source == target:
            attrs.append("dir=forward")
        lines.append(f"  {ids.of(source)} -> {ids.of(target)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _title(flow: m.Flow, problems: FlowAnalysis, untested: Untested | None) -> list[str]:
    out = [f"{flow.name}", f"version {flow.version} · start: {flow.start}"]
    if untested is not None:
        out.append(f"flow tests walk {untested.percent:.0f}% (grey: untested)")
    n_dead, n_lost = len(problems.dead_ends), len(problems.unreachable)
    if n_dead or n_lost:
        out.append(f"⚠ {n_dead} dead end(s), {n_lost} unreachable node(s)")
    return out


def _node_statement(
    flow: m.Flow, node: m.FlowNode, problems: FlowAnalysis, ids: DotIds, untested: Untested | None
) -> str:
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
    if untested is not None and node.id in untested.nodes:
        classes.append("untested")
        fill, fontcolour = UNTESTED_FILL, "#555555"
        extra.append("no test reaches it")
    elif untested is not None and untested.retries_of(node.id):
        extra.append(f"untested: {' and '.join(untested.retries_of(node.id))} retry")
    label = _node_label(node, kind, extra)
    attrs = [
        f"label=<{label}>",
        f"shape={shape}",
        f'style="{",".join(dict.fromkeys(styles))}"',
        f'fillcolor="{fill}"',
        f'color="{colour}"',
        f'fontcolor="{fontcolour}"',
        f"penwidth={pen}",
        f"class={dot_quote(' '.join(classes))}",
    ]
    if PLAIN_ID.fullmatch(node.id):
        attrs.append(f'id="ivr-node-{node.id}"')
    return f"  {ids.of(node.id)} [{', '.join(attrs)}];"


def _node_label(node: m.FlowNode, kind: str, extra: list[str]) -> str:
    head = f"<B>{html_escape(node.id)}</B>"
    kind_line = f'<FONT POINT-SIZE="10" COLOR="#444444"><I>{html_escape(kind)}</I></FONT>'
    details = [shorten(d) for d in node_details(node)]
    parts = [head, kind_line]
    parts += [f'<FONT POINT-SIZE="10">{html_escape(d)}</FONT>' for d in details]
    parts += [f'<FONT POINT-SIZE="10"><B>{html_escape(x)}</B></FONT>' for x in extra]
    return "<BR/>".join(parts)


def _untested_arrow(
    untested: Untested, source: str, labels: list[str], colour: str, line: str
) -> tuple[str, str, list[str]]:
    """An arrow no test took is grey and dotted; on an arrow some tests took, the labels
    of the ways none took say so."""
    missed = [lbl for lbl in labels if (source, lbl) in untested.arrows]
    if missed and len(missed) == len(labels):
        return (
            UNTESTED_COLOUR,
            "dotted",
            [f"{lbl} (untested)" if lbl else "untested" for lbl in labels],
        )
    text = [f"{lbl} (untested)" if lbl in missed else lbl for lbl in labels if lbl]
    return colour, line, text


def _pseudo_targets(flow: m.Flow, edges: list[Edge]) -> list[str]:
    return list(dict.fromkeys(e.target for e in edges if e.target not in flow.nodes))


def _pseudo_statement(target: str, ids: DotIds) -> str:
    if target.startswith("flow:"):
        label = f'<FONT POINT-SIZE="10"><I>sub-flow</I></FONT><BR/><B>{html_escape(target[5:])}</B>'
        attrs = 'shape=tab, style="filled,dashed", fillcolor="#f2fbfc", color="#0b6470"'
        cls = "ivr-subflow"
    elif target in (HANGUP, RETURN):
        label = f"<B>{target}</B>"
        attrs = 'shape=doublecircle, fillcolor="#f5f5f5", color="#333333", fontsize=10'
        cls = "ivr-end"
    elif target == BACK:
        label = "<I>previous menu</I>"
        attrs = 'shape=plaintext, style="", fontsize=10'
        cls = "ivr-back"
    else:  # a target that is not a node (the loader rejects those; drawn all the same)
        label = f"<B>{html_escape(target)}</B><BR/>missing node"
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
    p.add_argument(
        "--coverage",
        metavar="FILE",
        help="grey out what no flow test walks (the JSON of ivr test --coverage-json)",
    )
    p.set_defaults(func=_graph_command)
    return p


def _read_coverage(file: str, flow: str) -> Untested:
    try:
        return Untested.from_json(json.loads(Path(file).read_text(encoding="utf-8")), flow)
    except OSError as exc:
        raise IvrError(f"{file}: cannot read the coverage file: {exc.strerror or exc}") from None
    except ValueError as exc:  # not JSON, or no such flow in it
        raise IvrError(f"{file}: {exc}") from None


def _graph_command(args: argparse.Namespace) -> int:
    from ivr.flow.loader import load_flow

    fmt = args.format or (
        "dot" if args.output and Path(args.output).suffix.lower() in (".dot", ".gv") else "svg"
    )
    flow = load_flow(args.flow)  # FlowErrors: ivr's main prints file:line:col and exits 2
    untested = _read_coverage(args.coverage, flow.name) if args.coverage else None
    dot = flow_dot(flow, untested=untested)
    text = dot if fmt == "dot" else render_dot(dot, "svg").decode("utf-8")
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise IvrError(f"cannot write {args.output}: {exc}") from None
        print(f"wrote {args.output} ({fmt}, {len(flow.nodes)} nodes)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
