"""The flow as arrows between nodes, and what they tell about where a call can go.

:func:`flow_edges` lists every way out of every node (menu digits and words, retries, branch
conditions, hours windows, errors, ``next``, a called sub-flow), with ``back`` options resolved
to the menus that can lead there. :func:`analyse` finds two kinds of problem on those arrows:

* **dead end**: no path from the node reaches an end of the call (a ``hangup`` node or target,
  a ``transfer`` or ``queue`` to an agent, or ``return`` in a sub-flow); a caller there can
  only hang up themselves;
* **unreachable**: no path from ``start`` reaches the node.

The picture (:mod:`ivr.flow.graph`) draws the arrows and marks both problems.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ivr.flow import model as m
from ivr.flow.graph_labels import LABEL_MAX, shorten
from ivr.flow.model_values import BACK, HANGUP, REPEAT, RETURN
from ivr.flow.node import EdgeStyle, Node

__all__ = ["Edge", "FlowAnalysis", "analyse", "flow_edges"]


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


# --- edges ------------------------------------------------------------------------------------


def flow_edges(flow: m.Flow) -> list[Edge]:
    """Every arrow of the flow's picture, in node order; ``back`` options are resolved to the
    menus that can lead to the menu (an arrow to each)."""
    out: list[Edge] = []
    into: dict[str, set[str]] | None = None  # built once, at the first `back` option
    for node in flow.nodes.values():
        for target, label, style in _node_edges(node):
            if target == REPEAT:
                out.append(Edge(node.id, node.id, label, "option"))
            elif target == BACK:
                into = _incoming(flow) if into is None else into
                previous = _previous_menus(flow, node.id, into) or [BACK]
                out += [Edge(node.id, p, label, "back") for p in previous]
            else:
                out.append(Edge(node.id, target, label, style))
    return out


def _node_edges(node: Node) -> Iterator[tuple[str, str, EdgeStyle]]:
    for e in node.exits():
        label = f"{e.label} {shorten(e.condition)}" if e.condition else e.label
        yield e.target, shorten(label, 2 * LABEL_MAX), e.style


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
    ends += [HANGUP, RETURN]
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
