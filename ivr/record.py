"""The call record: what every call leaves behind, whatever way it ends.

Plain data, written by the interpreter and persisted by ``ivr.store``. KPIs are computed from
these records only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["self_service", "transferred", "abandoned", "error"]
OUTCOMES: tuple[Outcome, ...] = ("self_service", "transferred", "abandoned", "error")
MASK = "***"


@dataclass(slots=True)
class InputEvent:
    """One thing the caller did at a node: digits pressed, words said, or nothing."""

    node: str
    kind: str  # "dtmf" | "speech" | "no_input" | "no_match" | "confirm"
    value: str  # already masked when the node is sensitive
    at_s: float  # seconds since the call started


@dataclass(slots=True)
class CallRecord:
    """One row per call."""

    call_id: str  # Asterisk uniqueid (or a generated id in simulation)
    flow: str
    flow_version: str
    caller: str = ""
    dnis: str = ""
    started_at: float = 0.0  # Unix time
    ended_at: float | None = None
    language: str = ""
    path: list[str] = field(default_factory=list)  # node ids in visiting order
    inputs: list[InputEvent] = field(default_factory=list)
    outcome: Outcome | None = None
    end_node: str | None = None  # where the call ended
    transfer_target: str | None = None
    error: str | None = None
    variables: dict[str, str] = field(default_factory=dict)  # non-sensitive flow variables

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at
