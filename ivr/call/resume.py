"""Where a call in progress can be resumed: saved with each checkpoint, so that when the node
running the call dies, the dialplan re-enters FastAGI (``hagi://`` finds another node) and that
node carries on at the menu the caller was in, with the same record.

Plain data; JSON in the store (``calls.resume``). Sensitive flow variables are never in it:
a resumed call that needs one again asks for it again (or takes its flow's error path).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = ["ResumePoint"]

# One encoder for every checkpoint: json.dumps() builds a new one for each non-default option.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """The interpreter's state before a node that waits for the caller."""

    flow: str  # the flow the call is in at that node (a sub-flow while one runs)
    node: str  # the node to start again at: a menu or a collect
    stack: tuple[tuple[str, str], ...] = ()  # sub-flow return points: (flow, target node)
    variables: dict[str, str] = field(default_factory=dict)  # non-sensitive flow variables
    language: str = ""  # the call's language then (a flow may have changed it)
    menus: tuple[str, ...] = ()  # menu history, for "back"
    served: bool = False  # the caller was already served (self-service)
    agent_reached: bool = False

    def to_json(self) -> str:
        # Field by field, as asdict() would give them: asdict() deep-copies every value,
        # and a checkpoint is written before each menu of every call.
        point = {
            "flow": self.flow,
            "node": self.node,
            "stack": self.stack,
            "variables": self.variables,
            "language": self.language,
            "menus": self.menus,
            "served": self.served,
            "agent_reached": self.agent_reached,
        }
        return _encode_json(point)

    @classmethod
    def from_json(cls, text: str) -> ResumePoint:
        """The point ``to_json`` wrote; :class:`ValueError` for anything else."""
        try:
            data = json.loads(text)
            return cls(
                flow=str(data["flow"]),
                node=str(data["node"]),
                stack=tuple((str(f), str(t)) for f, t in data.get("stack", ())),
                variables={str(k): str(v) for k, v in data.get("variables", {}).items()},
                language=str(data.get("language", "")),
                menus=tuple(str(m) for m in data.get("menus", ())),
                served=bool(data.get("served", False)),
                agent_reached=bool(data.get("agent_reached", False)),
            )
        except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a resume point: {exc}") from exc
