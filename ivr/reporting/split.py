"""The branches of a ``split`` node compared (``ivr report --split NODE``).

Pure functions over call records, like :mod:`ivr.reporting.kpi`: a call belongs to the branch
its first ``split`` input at that node names (the interpreter records the branch's label
there). Per branch: calls, self-service and abandonment rates with their 95 % Wilson
intervals (so two branches whose intervals overlap are not told apart yet), containment,
failures in the IVR, transfers, errors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ivr.call.record import CallRecord
from ivr.reporting.kpi import is_contained, rate

__all__ = ["SPLIT_DEFINITIONS", "format_split", "split_report", "wilson"]

SPLIT_INPUT = "split"  # the input kind the interpreter records at a split node
Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval

SPLIT_DEFINITIONS: dict[str, str] = {
    "calls": "finished calls that went through the split node on this branch",
    "in_progress": "calls on this branch without an outcome yet; in no other figure",
    "share": "this branch's calls / the node's calls (compare with its percent)",
    "self_service_rate": "calls ending self_service (the caller reached a node marked served,"
    " and was not handed to an agent) / calls",
    "containment_rate": "calls the IVR kept (no queue visit, answered transfer or error) / calls",
    "failed_in_ivr_rate": "calls ending failed_in_ivr (the flow ended the call, never served)"
    " / calls",
    "abandon_rate": "calls ending abandoned (the caller hung up before being served, in line"
    " for an agent included) / calls",
    "transfer_rate": "calls ending transferred (an agent answered, or a callback was booked)"
    " / calls",
    "error_rate": "calls ending error / calls",
    "*_ci95": "95 % Wilson score interval of the rate, [low, high]",
}


@dataclass(slots=True)
class _Branch:
    calls: int = 0
    in_progress: int = 0
    self_service: int = 0
    contained: int = 0
    failed_in_ivr: int = 0
    abandoned: int = 0
    transferred: int = 0
    errors: int = 0

    def add(self, record: CallRecord) -> None:
        if record.outcome is None:
            self.in_progress += 1
            return
        self.calls += 1
        self.self_service += record.outcome == "self_service"
        self.contained += is_contained(record)
        self.failed_in_ivr += record.outcome == "failed_in_ivr"
        self.abandoned += record.outcome == "abandoned"
        self.transferred += record.outcome == "transferred"
        self.errors += record.outcome == "error"

    def figures(self, total: int) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "in_progress": self.in_progress,
            "share": rate(self.calls, total),
            "self_service_rate": rate(self.self_service, self.calls),
            "self_service_ci95": wilson(self.self_service, self.calls),
            "containment_rate": rate(self.contained, self.calls),
            "failed_in_ivr_rate": rate(self.failed_in_ivr, self.calls),
            "abandon_rate": rate(self.abandoned, self.calls),
            "abandon_ci95": wilson(self.abandoned, self.calls),
            "transfer_rate": rate(self.transferred, self.calls),
            "error_rate": rate(self.errors, self.calls),
        }


def wilson(successes: int, n: int) -> list[float] | None:
    """The 95 % Wilson score interval of ``successes / n`` as ``[low, high]`` (4 places);
    ``None`` for ``n == 0``. Unlike the normal approximation it stays inside [0, 1] and is
    honest for small ``n`` and rates near 0 or 1."""
    if n == 0:
        return None
    p, z2 = successes / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def branch_of(record: CallRecord, node: str) -> str | None:
    """The label of the branch ``record`` took at split node ``node``, or None."""
    for event in record.inputs:
        if event.kind == SPLIT_INPUT and event.node == node:
            return event.value
    return None


def split_report(records: Iterable[CallRecord], node: str) -> dict[str, Any]:
    """The branches of split node ``node`` (the flow filter is the caller's: ``--flow``).

    Returns ``{"node": node, "calls": n, "branches": {label: figures}, "definitions": ...}``
    with branches in order of their labels; rates in 0..1 (4 places), None without calls.
    Reads ``records`` once."""
    branches: dict[str, _Branch] = {}
    for record in records:
        label = branch_of(record, node)
        if label is not None:
            branches.setdefault(label, _Branch()).add(record)
    total = sum(b.calls for b in branches.values())
    return {
        "node": node,
        "calls": total,
        "branches": {label: branches[label].figures(total) for label in sorted(branches)},
        "definitions": dict(SPLIT_DEFINITIONS),
    }


_COLUMNS = (  # key, header
    ("calls", "calls"),
    ("share", "share"),
    ("self_service_rate", "self"),
    ("self_service_ci95", "self 95% CI"),
    ("containment_rate", "contain"),
    ("failed_in_ivr_rate", "failed"),
    ("abandon_rate", "aband"),
    ("abandon_ci95", "aband 95% CI"),
    ("transfer_rate", "transf"),
    ("error_rate", "error"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, list):
        return f"{value[0] * 100:.1f}-{value[1] * 100:.1f}%"
    if isinstance(value, float):
        return f"{value * 100:.1f}%"
    return str(value)


def format_split(data: dict[str, Any]) -> str:
    """:func:`split_report`'s dict as a text table, one row per branch."""
    lines = [f"Split '{data['node']}': {data['calls']} finished call(s)", ""]
    if not data["branches"]:
        return "\n".join([*lines, "  (no call went through this split node)"])
    header = ["branch", *(title for _, title in _COLUMNS)]
    rows = [[label, *(_cell(f[k]) for k, _ in _COLUMNS)] for label, f in data["branches"].items()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for cells in [header, *rows]:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]).rstrip())
    lines += [
        "",
        "Rates: % of the branch's finished calls; an interval is the rate's 95% Wilson range:"
        " branches whose ranges overlap are not yet told apart. Definitions: --json.",
    ]
    return "\n".join(lines)
