"""Where a flow's arrows lead: targets that are not a node, and nodes no call reaches.

A typo in one target (``next: mian``) leaves everything behind it unreachable. Those nodes are
not separate mistakes: they are listed in the broken target's error ("5 nodes are unreachable
because of this: main, menu, ...") when going to its closest suggestion would reach them.
Only nodes that no broken target explains get their own "never reached" error.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ivr.errors import FlowError
from ivr.flow import model as m
from ivr.flow.model_values import BACK, REPEAT, RESERVED_TARGETS
from ivr.flow.source import Path, Source
from ivr.flow.suggest import Suggester, did_you_mean

__all__ = ["edges", "target_errors"]

NAMES_SHOWN = 8  # folded unreachable nodes named in a message; the rest are counted


def edges(node: m.FlowNode) -> Iterator[tuple[str, Path]]:
    """Every node target a node can go to, with the YAML path (inside the node) that names it."""
    return ((e.target, e.path) for e in node.exits() if e.to_node)


@dataclass(frozen=True)
class _Broken:
    """A target that is not a node: ``source`` node ("" for ``start``), the target written,
    where it is."""

    source: str
    target: str
    path: Path


def target_errors(flow: m.Flow, src: Source, broken_nodes: set[str]) -> list[FlowError]:
    """A ``start`` or targets that are neither a node nor a reserved word, with a "did you
    mean"; then, unless some nodes failed to build (``broken_nodes``: their exits are
    unknown), the nodes never reached from start, each folded under the broken target that
    explains it, if one does."""
    known = RESERVED_TARGETS | broken_nodes
    errors: list[FlowError] = []
    broken: list[_Broken] = []
    if flow.start not in flow.nodes and flow.start not in broken_nodes:
        broken.append(_Broken("", flow.start, ("start",)))
    for node in flow.nodes.values():
        base: Path = ("nodes", node.id)
        for target, where in edges(node):
            if target in (REPEAT, BACK) and not isinstance(node, m.MenuNode):
                errors.append(src.error((*base, *where), f"'{target}' only works in menu options"))
            elif target not in flow.nodes and target not in known:
                path = (*base, *where)
                if path not in src.marks and any(
                    b.source == node.id and b.target == target for b in broken
                ):
                    continue  # a default copied from a key already reported (when_holiday)
                broken.append(_Broken(node.id, target, path))
    hints: dict[_Broken, list[str]] = {}
    if broken:  # one index of the names, built only when a target needs it
        names = Suggester([*flow.nodes, *sorted(RESERVED_TARGETS)])
        hints = {b: names.close(b.target) for b in broken}
    reach = not broken_nodes
    folded: dict[_Broken, list[str]] = {}
    reached: set[str] = {""}  # "" is where the call comes in, before start
    if reach:
        reached |= set(_closure(flow, [flow.start], reached))
        folded = _fold(flow, broken, hints, reached)
    errors += [src.error(b.path, _dangling(b, hints[b], folded.get(b, []))) for b in broken]
    if reach:
        errors += [
            src.error(
                ("nodes", nid, "<key>"),
                f"never reached from start '{flow.start}'; link it from another node or delete it",
                node=nid,
            )
            for nid in flow.nodes
            if nid not in reached
        ]
    return errors


def _fold(
    flow: m.Flow, broken: list[_Broken], hints: dict[_Broken, list[str]], reached: set[str]
) -> dict[_Broken, list[str]]:
    """For each broken target a call can meet, the nodes that only its closest suggestion
    would reach; ``reached`` grows by them (so each node is folded under one target only)."""
    by_source: dict[str, list[_Broken]] = {}
    for b in broken:
        by_source.setdefault(b.source, []).append(b)
    todo = deque(b for b in broken if b.source in reached)
    folded: dict[_Broken, list[str]] = {}
    while todo:
        b = todo.popleft()
        fix = next((n for n in hints[b] if n in flow.nodes and n not in reached), None)
        if fix is None:
            continue
        new = _closure(flow, [fix], reached)
        folded[b] = list(new)
        reached.update(new)
        todo += (more for nid in new for more in by_source.get(nid, ()))
    return folded


def _closure(flow: m.Flow, roots: Iterable[str], outside: set[str]) -> dict[str, None]:
    """Nodes reached from ``roots`` (not going into ``outside``), in breadth-first order."""
    seen: dict[str, None] = {}
    todo = deque(roots)
    while todo:
        nid = todo.popleft()
        if nid in seen or nid in outside or nid not in flow.nodes:
            continue
        seen[nid] = None
        todo += (t for t, _ in edges(flow.nodes[nid]))
    return seen


def _dangling(b: _Broken, hints: list[str], unreachable: list[str]) -> str:
    message = (
        f"goes to '{b.target}', which is not a node of this flow"
        if b.source
        else f"start node '{b.target}' does not exist"
    )
    if unreachable:
        n = len(unreachable)
        shown = ", ".join(unreachable[:NAMES_SHOWN])
        more = f" and {n - NAMES_SHOWN} more" if n > NAMES_SHOWN else ""
        count = "1 node is" if n == 1 else f"{n} nodes are"
        message += f" ({count} unreachable because of this: {shown}{more})"
    hint = did_you_mean(hints)
    return f"{message}; {hint}" if hint else message
