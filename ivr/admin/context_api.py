"""``GET /api/calls/{call_id}/context``: a call as a CRM's screen-pop wants it.

The agent's channel carries ``IVR_CALL_ID`` (:mod:`ivr.runtime.screenpop`); with it a CRM asks
any node for the call's flow, language, path, non-sensitive variables, the reason it was
handed over and its queue visit. A call in progress on the node asked is read live (what it
has done up to now); any other comes from the store: a finished call as recorded, one in
progress on another node as its last checkpoint left it (its path to the last menu; its
variables once it ends). Sensitive variables show as ``***`` and the caller's number masked.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from ivr.admin.console import Console
from ivr.admin.stored import stored_call
from ivr.call.record import mask_caller
from ivr.reporting.queries import masked_record
from ivr.runtime.interpreter import CallRun
from ivr.runtime.screenpop import reason

__all__ = ["ContextEndpoint", "live_context"]


def live_context(run: CallRun) -> dict[str, Any]:
    """The context of a call in progress on this server."""
    record = run.record
    variables = run.public_variables()
    return {
        "call_id": record.call_id,
        "live": True,
        "flow": run.flow.name,  # the flow it is in now (a sub-flow while one runs)
        "language": run.vars.get("language", ""),
        "caller": mask_caller(record.caller),
        "started_at": record.started_at,
        "node": record.end_node,
        "path": list(record.path),
        "variables": variables,
        "reason": reason(run.flow, record, variables),
        "queue": asdict(record.queue) if record.queue is not None else None,
        "outcome": None,
    }


class ContextEndpoint:
    """The handler over ``console``."""

    def __init__(self, console: Console) -> None:
        self.console = console

    async def context(self, request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        run = self.console.running(call_id)
        if run is not None:
            return web.json_response(live_context(run))
        record = await stored_call(self.console, call_id)
        flow = self.console.flows.get(record.flow)
        data = masked_record(record, flow)
        variables: dict[str, str] = data["variables"]
        why = reason(flow, record, variables) if flow else variables.get("reason", "")
        return web.json_response(
            {
                "call_id": record.call_id,
                "live": False,
                "flow": record.flow,
                "language": record.language,
                "caller": mask_caller(record.caller),
                "started_at": record.started_at,
                "node": record.end_node,
                "path": list(record.path),
                "variables": variables,
                "reason": why,
                "queue": data["queue"],
                "outcome": record.outcome,
            }
        )
