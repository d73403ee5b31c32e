"""Which parts of a flow its tests walk: nodes, exits, and no-input / no-match retries.

The items come from the model, so every node kind is covered the same way: each node, each
of its :meth:`~ivr.flow.node.Node.exits` (menu options, ``no_input``/``no_match`` give-ups
and ``otherwise``, branch cases, hours ``open``/``closed``/``holiday``, ``on_error``,
``on_fail``, queue ``unavailable``/``timeout``/callback, ``next``...), and a retry item per
menu or collect rule that allows one (``max`` > 0). The runtime's test runner
(:mod:`ivr.runtime.flow_tests`) reports every node a test call walked as a :class:`Step`;
:class:`Coverage` turns steps into covered items. ``ivr test`` prints the summary, writes it as
JSON, and ``ivr graph --coverage`` greys out what no test walks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ivr.flow import model as m
from ivr.flow.graph_labels import LABEL_MAX, shorten
from ivr.flow.node import Exit
from ivr.flow.queue_node import QueueNode
from ivr.flow.source import load_source

__all__ = ["Coverage", "FlowCoverage", "Item", "Step", "Untested", "exit_key", "graph_label"]

ItemKind = Literal["node", "exit", "retry"]
GIVE_UPS = ("no_input", "no_match")
_KINDS: tuple[tuple[ItemKind, str], ...] = (
    ("node", "nodes"),
    ("exit", "exits"),
    ("retry", "retries"),
)


@dataclass(frozen=True)
class Step:
    """One node a test call walked. ``target``: where it went (None: the call ended there);
    ``inputs``: ``(kind, option key or value)`` the caller gave in it; ``hint``: which way a
    node with several exits to one target went (branch ``case:N``/``else``, hours status,
    split label, queue result, ``return`` for a call node its sub-flow came back to)."""

    flow: str
    node: str
    target: str | None
    inputs: tuple[tuple[str, str], ...] = ()
    hint: str = ""


@dataclass(frozen=True)
class Item:
    """Something a test can walk: a node, one of its exits, or one of its retries."""

    node: str
    kind: ItemKind
    key: str = ""  # exits: the YAML path in the node (menu.options.1); retries: no_input
    label: str = ""
    line: int = 0

    def describe(self) -> str:
        if self.kind == "node":
            return f"node {self.node}"
        if self.kind == "retry":
            return f"{self.node}: {self.key} retry"
        return f"{self.node} -> {self.label or self.key}"


def exit_key(exit: Exit) -> str:
    """An exit's id inside its node: its YAML path, dotted (``menu.options.1``)."""
    return ".".join(str(p) for p in exit.path)


def graph_label(exit: Exit) -> str:
    """The label the flow picture writes on the exit's arrow (:mod:`ivr.flow.reachability`)."""
    label = f"{exit.label} {shorten(exit.condition)}" if exit.condition else exit.label
    return shorten(label, 2 * LABEL_MAX)


@dataclass(frozen=True)
class Untested:
    """What the flow picture greys out: nodes and arrows (source node, arrow label) no test
    walks, and the share of items tests walk."""

    nodes: frozenset[str] = frozenset()
    arrows: frozenset[tuple[str, str]] = frozenset()
    percent: float = 100.0
    retries: frozenset[tuple[str, str]] = frozenset()  # (node, no_input or no_match)

    def retries_of(self, node: str) -> list[str]:
        """The node's retries no test walks, ``no_input`` before ``no_match``."""
        return [name for name in GIVE_UPS if (node, name) in self.retries]

    @classmethod
    def from_json(cls, data: object, flow: str) -> Untested:
        """From ``ivr test --coverage-json``'s document; ValueError when it lacks ``flow``."""
        flows = data.get("flows") if isinstance(data, dict) else None
        mine = flows.get(flow) if isinstance(flows, dict) else None
        if not isinstance(mine, dict) or not isinstance(mine.get("missing"), list):
            raise ValueError(f"the coverage file has no flow '{flow}' (run ivr test on it)")
        missing = [i for i in mine["missing"] if isinstance(i, dict)]
        return cls(
            frozenset(str(i.get("node")) for i in missing if i.get("kind") == "node"),
            frozenset(
                (str(i.get("node")), str(i.get("label", "")))
                for i in missing
                if i.get("kind") == "exit"
            ),
            float(mine.get("percent", 0.0)),
            frozenset(
                (str(i.get("node")), str(i.get("key"))) for i in missing if i.get("kind") == "retry"
            ),
        )


@dataclass
class FlowCoverage:
    """The items of one flow and the ones tests walked."""

    flow: m.Flow
    items: list[Item]
    covered: set[Item] = field(default_factory=set)

    def count(self, kind: ItemKind) -> tuple[int, int]:
        mine = [i for i in self.items if i.kind == kind]
        return sum(i in self.covered for i in mine), len(mine)

    @property
    def missing(self) -> list[Item]:
        return [i for i in self.items if i not in self.covered]

    def untested(self) -> Untested:
        """For the flow picture (:func:`ivr.flow.graph.flow_dot`)."""
        arrows = {(i.node, i.label) for i in self.missing if i.kind == "exit"}
        retries = {(i.node, i.key) for i in self.missing if i.kind == "retry"}
        nodes = frozenset(self.untested_nodes())
        return Untested(nodes, frozenset(arrows), self.percent(), frozenset(retries))

    def untested_nodes(self) -> set[str]:
        return {i.node for i in self.missing if i.kind == "node"}

    def summary(self) -> str:
        """``main: nodes 4/6, exits 4/10, retries 0/2 (44%)`` and a line per missing item
        (a node no test reaches stands for its exits and retries)."""
        parts = [f"{name} {'/'.join(map(str, self.count(kind)))}" for kind, name in _KINDS]
        head = f"{self.flow.name}: {', '.join(parts)} ({self.percent():.0f}%)"
        unreached = self.untested_nodes()
        lines: list[str] = []
        for item in self.missing:
            if item.kind == "node":
                more = sum(1 for i in self.items if i.node == item.node and i.kind != "node")
                tail = (
                    f" (never reached, nor its {more} exits/retries)"
                    if more
                    else " (never reached)"
                )
                lines.append(f"  {self.flow.file}:{item.line}: node {item.node}{tail}")
            elif item.node not in unreached:
                lines.append(f"  {self.flow.file}:{item.line}: {item.describe()}")
        return "\n".join([head, *lines])

    def percent(self) -> float:
        return 100.0 * len(self.covered) / len(self.items) if self.items else 100.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.flow.file, "version": self.flow.version}
        for kind in ("node", "exit", "retry"):
            done, total = self.count(kind)
            out[f"{kind}s"] = {"covered": done, "total": total}
        out["percent"] = round(self.percent(), 1)
        out["missing"] = [
            {"node": i.node, "kind": i.kind, "key": i.key, "label": i.label, "line": i.line}
            for i in self.missing
        ]
        return out


class Coverage:
    """Coverage of several flows, filled step by step."""

    def __init__(self, flows: Iterable[m.Flow]) -> None:
        self.flows = {f.name: FlowCoverage(f, list(flow_items(f))) for f in flows}

    def add(self, steps: Iterable[Step]) -> None:
        for step in steps:
            cov = self.flows.get(step.flow)
            node = cov.flow.nodes.get(step.node) if cov is not None else None
            if cov is None or node is None:
                continue
            lines = {(i.kind, i.key): i for i in cov.items if i.node == node.id}
            cov.covered.add(lines[("node", "")])
            for kind, key in walked(node, step):
                item = lines.get((kind, key))
                if item is not None:
                    cov.covered.add(item)

    def to_dict(self) -> dict[str, Any]:
        return {"flows": {name: cov.to_dict() for name, cov in self.flows.items()}}


def flow_items(flow: m.Flow) -> Iterator[Item]:
    """Every item of a flow, with its YAML line (the file read again for the exits')."""
    try:
        src = load_source(Path(flow.file).read_text(encoding="utf-8"), flow.file)
        where = src.where
    except Exception:  # a file changed or gone since: the node's line will do
        where = None
    for node in flow.nodes.values():
        base = ("nodes", node.id)
        yield Item(node.id, "node", line=node.line)
        for e in node.exits():
            line = where((*base, *e.path))[0] if where else node.line
            yield Item(node.id, "exit", exit_key(e), graph_label(e), line)
        if isinstance(node, m.MenuNode | m.CollectNode):
            for name in GIVE_UPS:
                if getattr(node, name).max > 0:
                    line = where((*base, node.kind, name))[0] if where else node.line
                    yield Item(node.id, "retry", name, f"{name} retry", line)


def walked(node: m.FlowNode, step: Step) -> Iterator[tuple[ItemKind, str]]:
    """The exits and retries one step covered."""
    exits = list(node.exits())
    if isinstance(node, m.MenuNode | m.CollectNode):
        yield from _input_step(node, step, exits)
        return
    if isinstance(node, m.CallNode):
        wanted = ("next",) if step.hint == "return" else ("call",)
        yield from (("exit", exit_key(e)) for e in exits if e.path == wanted)
        return
    matches = [e for e in exits if e.target == step.target and e.to_node]
    if len(matches) > 1:
        matches = [e for e in matches if _hinted(node, e, step.hint)] or matches[:1]
    yield from (("exit", exit_key(e)) for e in matches)


def _hinted(node: m.FlowNode, e: Exit, hint: str) -> bool:
    """Among exits to one target, the one the step's hint names."""
    if isinstance(node, m.BranchNode):
        return e.path == (("else",) if hint == "else" else ("branch", int(hint[5:] or 0), "goto"))
    if isinstance(node, QueueNode):
        return e.path[-1] == _QUEUE_EXITS.get(hint, "next")
    return e.label == hint or e.label.startswith(f"{hint} ") or e.label.endswith(f" {hint}")


_QUEUE_EXITS = {
    "no_agents": "when_unavailable",
    "timeout": "when_timeout",
    "callback": "then",
    "callback_refused": "refused",
}


def _input_step(
    node: m.MenuNode | m.CollectNode, step: Step, exits: list[Exit]
) -> Iterator[tuple[ItemKind, str]]:
    events = list(step.inputs)
    last = events[-1][0] if events else ""
    gave_up = step.target is not None and last in GIVE_UPS
    for i, (kind, _) in enumerate(events):
        if kind in GIVE_UPS and not (gave_up and i == len(events) - 1):
            yield "retry", kind
    if isinstance(node, m.MenuNode):
        for kind, key in events:
            if kind in ("dtmf", "speech") and key in node.options:
                yield "exit", f"menu.options.{key}"
    if step.target is None:
        return
    if gave_up:
        rule: m.Retry = getattr(node, last)
        path = (node.kind, last, "then") if rule.then else (node.kind, "otherwise")
        yield from (("exit", exit_key(e)) for e in exits if e.path == path)
    elif isinstance(node, m.CollectNode):
        yield "exit", "next"
