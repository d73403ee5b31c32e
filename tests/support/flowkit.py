"""Helpers for flow tests: parse a flow from text and run it on a scripted channel."""

from __future__ import annotations

import textwrap
from typing import Any

from ivr.call.channel import CallInfo
from ivr.call.record import CallRecord
from ivr.flow.loader import parse_flow
from ivr.flow.model import Flow
from ivr.runtime.interpreter import CallRun, Services
from ivr.runtime.sim import ScriptedChannel, SimClock, parse_tokens

from .instants import next_monday_at

# the next Monday 10:00 UTC (18:00 in Shanghai), built from now: no date that will pass
MONDAY_10AM_UTC = next_monday_at(10).timestamp()


def flow(text: str, name: str = "test", **kw: Any) -> Flow:
    return parse_flow(textwrap.dedent(text), file=f"{name}.yaml", name=name, **kw)


async def run(
    f: Flow,
    tokens: str = "",
    *,
    at: float = MONDAY_10AM_UTC,
    caller: str = "5551234",
    language: str = "en",
    flows: dict[str, Flow] | None = None,
    **services: Any,
) -> tuple[CallRecord, ScriptedChannel]:
    """Run ``f`` on a scripted call; ``language`` is the one the channel comes in with."""
    clock = SimClock(at)
    info = CallInfo(uniqueid="t-1", caller_id=caller, language=language)
    channel = ScriptedChannel(parse_tokens(tokens), info=info, clock=clock)
    svc = Services(clock=clock, flows=flows or {f.name: f}, **services)
    record = await CallRun(f, channel, svc).run()
    return record, channel
