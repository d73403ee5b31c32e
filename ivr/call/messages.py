"""Messages callers leave (``record`` nodes): what the runtime hands over, and the port it
goes through.

The runtime never touches the file Asterisk wrote: it names it (:func:`message_name`, never
from caller input), asks the :class:`MessageSink` where Asterisk is to write it, and hands
it a :class:`LeftMessage` once the caller kept it. The server's sink (``ivr.app.messages``)
measures the WAV, transcribes it, stores the row and sends ``message.recorded``, all off the
call path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MESSAGES_SUBDIR", "LeftMessage", "MessageSink", "message_name"]

MESSAGES_SUBDIR = "messages"  # left messages, under the recordings directory

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def message_name(call_id: str, node: str, n: int) -> str:
    """The file name (no extension) of the ``n``-th message of ``call_id`` at ``node``: the
    call id with anything but letters, digits, ``.``, ``_`` and ``-`` replaced, so no call id
    can climb out of the recordings directory.

    >>> message_name("1733.42", "leave_message", 1)
    '1733.42-leave_message-1'
    >>> message_name("../../etc/passwd", "n", 2)
    '_.._etc_passwd-n-2'
    """
    safe = _UNSAFE.sub("_", call_id).lstrip(".") or "call"  # no hidden file, no ".."
    return f"{safe}-{_UNSAFE.sub('_', node)}-{n}"


@dataclass(frozen=True, slots=True)
class LeftMessage:
    """A message a caller left: ``name`` is the WAV's name under the recordings directory
    (without ``.wav``); ``duration_s`` is ``None`` when the caller hung up mid-message (the
    sink measures the file)."""

    call_id: str
    flow: str
    node: str
    caller: str
    name: str
    language: str
    duration_s: float | None = None


class MessageSink(Protocol):
    """Where left messages go; never waits for the store or a recogniser."""

    def path(self, name: str) -> str:
        """The absolute path (without ``.wav``) Asterisk writes message ``name`` to."""

    def keep(self, message: LeftMessage) -> None:
        """Store the message (measured, transcribed, its row written) in the background."""

    def discard(self, name: str) -> None:
        """The caller cancelled: remove the file, if any."""
