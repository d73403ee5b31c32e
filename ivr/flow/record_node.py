"""The ``record`` node: the caller leaves a message (voicemail) after a beep.

Its own module because :mod:`ivr.flow.model` is near the module size limit; the model's
``FlowNode`` union lists it like every other kind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ivr.flow.model_values import PromptSpec
from ivr.flow.node import Exit, Node

__all__ = ["CONFIRM_KEYS", "RecordNode"]

# What the caller presses after the confirm prompt: keep, record again, cancel.
CONFIRM_KEYS = {"1": "keep", "2": "again", "3": "cancel"}


@dataclass(frozen=True)
class RecordNode(Node):
    """Say ``prompt``, beep, record the caller until ``end_key``, ``silence_s`` of silence or
    ``max_s``; with ``confirm``, ask 1 keep / 2 record again / 3 cancel. A kept message goes
    to the server's messages (``next``); nothing said, or cancelled: ``on_empty``."""

    yaml_keys = ("record",)
    waits = True

    prompt: PromptSpec
    next: str
    on_empty: str  # nothing recorded (or only silence), or the caller cancelled
    beep: bool = True
    max_s: int = 120  # the longest message
    silence_s: int = 3  # this much silence ends the message (0: only the key or max_s)
    end_key: str = "#"  # ends the message ("": none)
    min_s: float = 0.5  # shorter (after the silence Asterisk keeps) counts as empty
    confirm: PromptSpec | None = None  # "1 to keep it, 2 to record again, 3 to cancel"
    max_tries: int = 3  # recordings a caller may make (re-records included); the last is kept

    def exits(self) -> Iterator[Exit]:
        yield Exit(self.next, ("next",), "message left")
        yield Exit(self.on_empty, ("record", "on_empty"), "no message", "error")

    def prompts(self) -> list[PromptSpec]:
        return [self.prompt] + ([self.confirm] if self.confirm is not None else [])
