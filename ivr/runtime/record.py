"""The ``record`` node's step: the caller leaves a message.

Say the prompt, record after the beep (:meth:`Channel.record`: the end key, silence or the
longest time ends it), then, with a ``confirm`` prompt, 1 keeps it, 2 records it again (into
the same file), 3 cancels. A kept message goes to :class:`~ivr.call.messages.MessageSink`,
which stores it in the background: the caller never waits for the store or a recogniser. A
caller who hangs up during or after their message still leaves it.
"""

from __future__ import annotations

from ivr.call.channel import Recorded, RecordRequest
from ivr.call.messages import LeftMessage, message_name
from ivr.errors import CallHangup
from ivr.flow.record_node import CONFIRM_KEYS, RecordNode
from ivr.runtime.context import CallContext

__all__ = ["run_record"]

CONFIRM_WAIT_S = 5.0  # after the confirm prompt, for the key
CONFIRM_ASKS = 2  # no answer this many times: the message is kept


async def run_record(call: CallContext, node: RecordNode) -> str:
    """Run one record node; where to go next (``next``, or ``on_empty``)."""
    sink = call.services.messages
    n = 1 + sum(1 for e in call.record.inputs if e.node == node.id and e.kind == "record")
    name = message_name(call.record.call_id, node.id, n)
    request = RecordRequest(
        file=sink.path(name) if sink is not None else name,
        escape_digits=node.end_key,
        max_s=float(node.max_s),
        silence_s=node.silence_s,
        beep=node.beep,
    )
    recorded: Recorded | None = None
    try:
        for tries in range(1, node.max_tries + 1):
            await call.say([node.prompt])
            recorded = None
            recorded = await call.channel.record(request)
            call.note_input(node, "record", f"{recorded.duration_s:.1f}s {recorded.ended}")
            if recorded.voice_s < node.min_s:
                _discard(call, name)
                return node.on_empty
            if node.confirm is None:
                break
            choice = await _confirm(call, node)
            if choice == "cancel":
                _discard(call, name)
                return node.on_empty
            if choice == "keep" or tries == node.max_tries:
                break
    except CallHangup:
        # hung up while recording (recorded is None: the file holds what they said, its
        # length unknown here) or while asked to confirm: the message is theirs all the same
        if recorded is None or recorded.voice_s >= node.min_s:
            _keep(call, node, name, recorded)
        raise
    _keep(call, node, name, recorded)
    return node.next


async def _confirm(call: CallContext, node: RecordNode) -> str:
    """``keep``, ``again`` or ``cancel`` (no answer after ``CONFIRM_ASKS``: keep)."""
    for _ in range(CONFIRM_ASKS):
        key = await call.say([node.confirm], "".join(CONFIRM_KEYS))
        key = key or await call.channel.wait_for_digit(CONFIRM_WAIT_S)
        if key in CONFIRM_KEYS:
            call.note_input(node, "confirm", key)
            return CONFIRM_KEYS[key]
    return "keep"


def _keep(call: CallContext, node: RecordNode, name: str, recorded: Recorded | None) -> None:
    sink = call.services.messages
    if sink is None:
        call.log.warning("record node %s: no message store here; message %s dropped", node.id, name)
        return
    sink.keep(
        LeftMessage(
            call_id=call.record.call_id,
            flow=call.flow.name,
            node=node.id,
            caller=call.record.caller,
            name=name,
            language=call.vars.get("language", ""),
            duration_s=None if recorded is None else recorded.duration_s,
        )
    )
    call.log.info("message %s left at %s", name, node.id)


def _discard(call: CallContext, name: str) -> None:
    if call.services.messages is not None:
        call.services.messages.discard(name)
