"""The screen-pop: what the agent's side learns about a caller handed to a queue.

Just before ``Queue()`` the caller's channel gets inherited variables (the ``__`` prefix:
Asterisk copies them to the agent's channel, and to a channel that one dials), and an
``agent.offered`` event goes to the webhooks with the non-sensitive variables and the path:

=================  ==========================================================================
``IVR_CALL_ID``    the call's id (``GET /api/calls/{id}/context`` gives the rest)
``IVR_REASON``     the flow variable ``reason`` when it is set and not sensitive, else the
                   last menu choice as ``menu:key`` (``""``: none)
``IVR_LANGUAGE``   the call's language
``IVR_FLOW``       the flow the caller is in
=================  ==========================================================================

Values are cut to :data:`MAX_VALUE` characters of letters, digits and ``_ . : @ + -`` (any other
becomes ``_``): the agent's dialplan may put them in an application's arguments, where a
``,`` or ``)`` would change its meaning. Nothing the caller typed or said is sent raw: a
speech choice becomes its menu key.
"""

from __future__ import annotations

import re

from ivr.call.events import agent_offered
from ivr.call.record import MASK, CallRecord
from ivr.flow import model as m
from ivr.flow.queue_node import QueueNode
from ivr.runtime.context import CallContext

__all__ = ["MAX_VALUE", "offer_to_agent", "reason", "safe_value"]

MAX_VALUE = 64
_UNSAFE = re.compile(r"[^\w.:@+-]")


def safe_value(value: str) -> str:
    """``value`` as the dialplan may use it anywhere (see the module's notes)."""
    return _UNSAFE.sub("_", value)[:MAX_VALUE]


def reason(flow: m.Flow, record: CallRecord, variables: dict[str, str]) -> str:
    """Why the caller wants an agent (see the module's notes): ``variables`` are the call's
    public ones."""
    given = variables.get("reason", "")
    if given and given != MASK:
        return given
    for event in reversed(record.inputs):
        node = flow.nodes.get(event.node)
        if isinstance(node, m.MenuNode) and event.kind in ("dtmf", "speech"):
            if event.value in node.options:
                return f"{node.id}:{event.value}"
            words = event.value.strip().lower()
            for key, option in node.options.items():
                if words in option.words:
                    return f"{node.id}:{key}"
            return ""
    return ""


async def offer_to_agent(
    run: CallContext, node: QueueNode, position: int, wait_s: float | None
) -> None:
    """Set the inherited variables on the caller's channel and emit ``agent.offered``."""
    variables = run.public_variables()
    why = reason(run.flow, run.record, variables)
    language = run.vars.get("language", "")
    for name, value in (
        ("IVR_CALL_ID", run.record.call_id),
        ("IVR_REASON", why),
        ("IVR_LANGUAGE", language),
        ("IVR_FLOW", run.flow.name),
    ):
        await run.channel.set_variable(f"__{name}", safe_value(value))
    events = run.services.events
    if events is not None:
        event = agent_offered(run.record, node.queue, why, language, variables, position, wait_s)
        events.emit(event)
