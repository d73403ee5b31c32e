"""The base of every node kind: what a node is (an id, a line, its YAML keys) and what the
rest of the language asks of it: its exits (validation checks them, the graph draws them), its
prompts, the variables it sets and reads, whether it waits for the caller or ends the call.

The node kinds themselves, each overriding what it needs, are in :mod:`ivr.flow.model`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from ivr.flow.model_values import PromptSpec

if TYPE_CHECKING:
    from ivr.flow.template import Template

EdgeStyle = Literal["next", "option", "retry", "branch", "hours", "error", "back", "call"]
YamlPath = tuple[str | int, ...]  # = ivr.flow.source.Path


@dataclass(frozen=True)
class Exit:
    """Where a node can go: validation checks the target, the graph draws the arrow."""

    target: str  # a node id or a reserved target; ``flow:NAME`` when ``to_node`` is false
    path: YamlPath  # the YAML path, inside the node, that names the target
    label: str = ""  # the arrow's label in the graph
    style: EdgeStyle = "next"
    condition: str = ""  # a branch case's condition (the graph shortens it after the label)
    to_node: bool = True  # false: a called sub-flow, not a node of this flow


# Exits of a node kind that does not list its own: (attribute path, label, style).
_GENERIC_EXITS: tuple[tuple[str, str, EdgeStyle], ...] = (
    ("callback.then", "callback booked", "option"),
    ("callback.refused", "callback refused", "error"),
    ("when_unavailable", "unavailable", "error"),
    ("when_timeout", "timeout", "retry"),
    ("on_error", "on_error", "error"),
    ("on_fail", "on_fail", "error"),
    ("otherwise", "otherwise", "retry"),
    ("next", "next", "next"),
)


@dataclass(frozen=True)
class Node:
    """A node kind owns its parts: the YAML keys that make it (``yaml_keys``), its exits and
    its prompts. Field defaults here are the only defaults: the loader passes what the YAML
    gives."""

    id: str
    line: int

    yaml_keys: ClassVar[tuple[str, ...]] = ()  # the first one is the kind's name
    waits: ClassVar[bool] = False  # waits for the caller: a loop through it does not spin
    ends_call: ClassVar[bool] = False  # ends the call (with an agent, maybe) whatever follows

    @property
    def kind(self) -> str:
        """``menu``, ``play``, ``transfer``... (``say`` nodes are ``play`` nodes)."""
        if self.yaml_keys:
            return self.yaml_keys[0]
        return type(self).__name__.removesuffix("Node").lower() or "node"

    def exits(self) -> Iterator[Exit]:
        """Every target the node can go to. This default follows the usual attribute names."""
        for attr, label, style in _GENERIC_EXITS:
            target: object = self
            for part in attr.split("."):
                target = getattr(target, part, None)
            if isinstance(target, str) and target:
                yield Exit(target, tuple(attr.split(".")), label, style)

    def prompts(self) -> list[PromptSpec]:
        """Every prompt the node can say, retry prompts included."""
        return []

    def assignments(self) -> list[tuple[str, Template]]:
        """The variables the node sets from a template (sensitivity passes through them)."""
        return []

    def sets(self) -> list[str]:
        """Every variable the node can set."""
        return [name for name, _ in self.assignments()]

    def reads(self) -> Iterator[tuple[str, YamlPath]]:
        """Variables the node reads, with where it reads them."""
        for attr in ("prompt", "short_prompt", "confirm"):
            prompt = getattr(self, attr, None)
            if prompt is not None:
                for name in sorted(prompt.variables):
                    yield name, (attr,)
