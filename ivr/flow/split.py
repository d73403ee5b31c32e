"""Percentage splits (``split:`` nodes, for A/B prompts or routes): which branch a call takes.

A caller always lands on the same branch of a flow's split: the point in ``[0, 100)`` is read
from SHA-256 of the flow's name and the caller id (never Python's ``hash()``, which changes
with every process), so a caller who calls again, on any node, hears the same variant. A call
without a caller id (empty, or a placeholder like ``anonymous`` that many callers share) takes
its point from its own call id instead: random across calls, stable within the call, and the
interpreter records the branch on the call either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["NO_CALLER_IDS", "SplitBranch", "pick_branch", "split_point"]

# Caller ids that name nobody in particular (compared lower case)
NO_CALLER_IDS = frozenset({"", "unknown", "anonymous", "restricted", "private", "unavailable"})
_SCALE = 100 / 2**64


@dataclass(frozen=True)
class SplitBranch:
    """One branch: ``percent`` of the callers go to ``target``; ``label`` names it in the
    call record and the report (the target when the flow gives none)."""

    percent: float
    target: str
    label: str


def split_point(flow: str, key: str) -> float:
    """Where ``key`` falls in ``[0, 100)`` for ``flow``: uniform over keys, fixed per pair."""
    digest = hashlib.sha256(f"{flow}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") * _SCALE


def pick_branch(
    branches: Sequence[SplitBranch], flow: str, caller_id: str, call_id: str
) -> SplitBranch:
    """The branch of ``flow``'s split for this caller (or, without a caller id, this call)."""
    caller = caller_id.strip()
    key = f"call:{call_id}" if caller.lower() in NO_CALLER_IDS else f"caller:{caller}"
    point, upper = split_point(flow, key), 0.0
    for branch in branches:
        upper += branch.percent
        if point < upper:
            return branch
    return branches[-1]  # the percentages add up to 100: only float rounding lands here
