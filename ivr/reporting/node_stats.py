"""Per-node figures of one flow over call records: where callers pass, wait, fail and hang up.

A pure function over :class:`~ivr.call.record.CallRecord` objects, like :mod:`ivr.reporting.kpi`:
:func:`node_stats` gives, for every node id the calls' paths name (a sub-flow's nodes as
``sub:node``, as the interpreter writes them), the figures of :data:`DEFINITIONS`. The admin
API draws them on the flow picture (``GET /api/flows/{name}/analytics``).

A *visit* is one entry of a call's ``path``: a caller who loops back through a menu visits it
twice, and both visits count (rates and times are per visit). Input events carry the bare node
id (no sub-flow prefix); each is given to the visit it happened in: the last entry of the path
with that bare id entered at or before the event (``path_at``), or, for records from before
``path_at``, the first entry with that bare id.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ivr.call.record import CallRecord, InputEvent
from ivr.reporting.kpi import nearest_rank, rate

__all__ = ["DEFINITIONS", "NODE_KEYS", "NodeFigures", "node_stats"]

DEFINITIONS: dict[str, str] = {
    "calls": "finished calls whose path went through the node at least once",
    "visits": "times a finished call entered the node (a call looping back counts each time)",
    "hangups": "calls whose last node it was and whose outcome is abandoned: the caller hung"
    " up there (or gave up waiting for an agent at a queue node)",
    "no_input_rate": "no_input events at the node (the caller said or pressed nothing) /"
    " visits; above 100 % when callers are asked again and again",
    "no_match_rate": "no_match events at the node (an answer the node did not take) / visits",
    "failed_in_ivr": "calls that ended at the node with outcome failed_in_ivr",
    "avg_time_s": "mean seconds from entering the node to entering the next one (the end of"
    " the call after the last node), per visit; calls stored without path_at are left out",
    "p50_time_s": "median of the same times, nearest-rank (the ceil(0.5 n)-th smallest)",
}
NODE_KEYS: tuple[str, ...] = tuple(DEFINITIONS)
_FAILED_INPUTS = ("no_input", "no_match")


@dataclass
class NodeFigures:
    """The running counts of one node, turned into the API's figures by :meth:`figures`."""

    calls: int = 0
    visits: int = 0
    hangups: int = 0
    no_input: int = 0
    no_match: int = 0
    failed_in_ivr: int = 0
    times: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        """The node's figures, keyed as :data:`NODE_KEYS` (rates ``None`` without visits,
        times ``None`` without a timed visit)."""
        times = self.times
        median = nearest_rank(times, 50)
        return {
            "calls": self.calls,
            "visits": self.visits,
            "hangups": self.hangups,
            "no_input_rate": rate(self.no_input, self.visits),
            "no_match_rate": rate(self.no_match, self.visits),
            "failed_in_ivr": self.failed_in_ivr,
            "avg_time_s": round(sum(times) / len(times), 3) if times else None,
            "p50_time_s": None if median is None else round(median, 3),
        }


def node_stats(records: Iterable[CallRecord]) -> dict[str, dict[str, Any]]:
    """Each node's figures (:data:`DEFINITIONS`) over the finished ``records``, by node id in
    the order the nodes were first met; calls in progress are left out."""
    nodes: dict[str, NodeFigures] = {}
    for record in records:
        if record.outcome is None or not record.path:
            continue
        _count_call(record, nodes)
    return {node: figures.figures() for node, figures in nodes.items()}


def _count_call(record: CallRecord, nodes: dict[str, NodeFigures]) -> None:
    path = record.path
    for node in path:
        nodes.setdefault(node, NodeFigures()).visits += 1
    for node in dict.fromkeys(path):
        nodes[node].calls += 1
    last = nodes[path[-1]]
    if record.outcome == "abandoned":
        last.hangups += 1
    elif record.outcome == "failed_in_ivr":
        last.failed_in_ivr += 1
    for event in record.inputs:
        at = _visited_at(record, event) if event.kind in _FAILED_INPUTS else None
        if at is not None and event.kind == "no_input":
            nodes[at].no_input += 1
        elif at is not None:
            nodes[at].no_match += 1
    for node, seconds in _times(record):
        nodes[node].times.append(seconds)


def _bare(node: str) -> str:
    """A path entry's node id without its sub-flow prefix (``pin:ask`` -> ``ask``)."""
    return node.rpartition(":")[2]


def _timed(record: CallRecord) -> bool:
    return len(record.path_at) == len(record.path) and all(math.isfinite(t) for t in record.path_at)


def _visited_at(record: CallRecord, event: InputEvent) -> str | None:
    """The path entry ``event`` happened at (``None``: the path never names its node)."""
    entries = [i for i, node in enumerate(record.path) if _bare(node) == event.node]
    if not entries:
        return None
    if _timed(record):
        before = [i for i in entries if record.path_at[i] <= event.at_s]
        if before:
            return record.path[before[-1]]
    return record.path[entries[0]]


def _times(record: CallRecord) -> list[tuple[str, float]]:
    """(node, seconds spent) per visit: until the next node is entered, the last one until the
    call ended; nothing for a record without ``path_at`` (stored before it existed)."""
    if not _timed(record):
        return []
    at, path = record.path_at, record.path
    spans = [(path[i], at[i + 1] - at[i]) for i in range(len(path) - 1)]
    duration = record.duration_s
    if duration is not None and duration >= record.path_at[-1]:
        spans.append((record.path[-1], duration - record.path_at[-1]))
    return [(node, max(0.0, seconds)) for node, seconds in spans]
