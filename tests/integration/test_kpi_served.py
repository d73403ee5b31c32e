"""KPIs that do not flatter the IVR (issue 15, part 8), end to end on the interpreter and a
real store (both engines): the issue's 12 calls through a small flow.

6 callers reach a node marked ``served: true``, 4 go to an agent, 2 say nothing, fail the menu
and hear "Goodbye.". Before, the 2 failed calls counted as self-service (8 / 12 = 66.7 %); now
they are ``failed_in_ivr``: self-service 6 / 12 = 50 %, containment (no agent, no queue)
8 / 12 = 66.7 %.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from typing import Any

import pytest
from support.flowkit import MONDAY_10AM_UTC, flow
from support.stores import Db

from ivr.call.channel import CallInfo
from ivr.call.record import CallRecord
from ivr.cli import main
from ivr.reporting.kpi import report
from ivr.runtime.interpreter import CallRun, Services
from ivr.runtime.sim import ScriptedChannel, SimClock, parse_tokens
from ivr.store.records import RecordStore

SMALL = flow(
    """
    flow: small
    start: welcome
    nodes:
      welcome: {play: "Welcome.", next: menu}
      menu:
        menu:
          prompt: "For our opening hours, press 1. For an agent, press 0."
          options: {"1": hours, "0": agent}
          timeout_s: 4
          no_input: {prompt: "Sorry, I did not hear anything.", max: 1}
          no_match: {max: 1}
          otherwise: goodbye
      hours: {play: "We are open from nine to five.", served: true, next: goodbye}
      agent:
        transfer: {to: "PJSIP/desk", timeout_s: 20, on_fail: goodbye}
      goodbye: {play: "Goodbye.", next: hangup}
    """,
    name="small",
)
CALLERS = ["1"] * 6 + ["0,answer"] * 4 + ["wait,wait"] * 2


async def place_calls(store: RecordStore) -> list[CallRecord]:
    records = []
    for n, tokens in enumerate(CALLERS):
        clock = SimClock(MONDAY_10AM_UTC - 3600 + 60 * n)
        channel = ScriptedChannel(
            parse_tokens(tokens), info=CallInfo(uniqueid=f"c{n}", caller_id="5551234"), clock=clock
        )
        run = CallRun(SMALL, channel, Services(clock=clock, flows={"small": SMALL}))
        await store.begin(run.record)
        record = await run.run()
        await store.finish(record)
        records.append(record)
    return records


async def test_twelve_calls_self_service_containment_and_failed_in_ivr(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await db.open() as store:
        placed = await place_calls(store)
        counts = await store.count_by_outcome(flow="small")
        stored = await store.recent(limit=100, flow="small")
    assert [r.outcome for r in placed] == (
        ["self_service"] * 6 + ["transferred"] * 4 + ["failed_in_ivr"] * 2
    )
    failed = placed[-1]
    assert failed.path == ["welcome", "menu", "goodbye"] and failed.end_node == "goodbye"
    assert [i.kind for i in failed.inputs] == ["no_input", "no_input"]
    assert counts["self_service"] == 6 and counts["transferred"] == 4
    assert counts["failed_in_ivr"] == 2 and counts["abandoned"] == counts["error"] == 0

    k = report(stored)["overall"]
    assert k["calls"] == 12
    assert k["self_service_rate"] == 0.5  # 6 / 12, not 8 / 12
    assert k["containment_rate"] == 0.6667  # 6 served + 2 failed never reached an agent
    assert k["failed_in_ivr_rate"] == 0.1667  # 2 / 12

    # `ivr report` on the same database says the same, in JSON and in text
    if db.backend == "sqlite":
        monkeypatch.setenv("IVR_STORE_PATH", db.target)
    else:
        monkeypatch.setenv("IVR_STORE_URL", db.target)
        monkeypatch.setenv("IVR_STORE_PASSWORD", db.password or "")
    data = json.loads(await cli("report", "--json", "--flow", "small"))
    assert data["flows"]["small"] == k
    overall = (await cli("report", "--flow", "small")).split("By flow")[0].splitlines()
    figures = dict(line.strip().rsplit(None, 1) for line in overall if line.startswith("  "))
    assert figures["self-service rate"] == "50.0%"
    assert figures["containment rate"] == "66.7%"
    assert figures["failed in IVR"] == "16.7%"


async def cli(*args: str) -> str:
    out = io.StringIO()

    def run() -> Any:
        with contextlib.redirect_stdout(out):
            return main(list(args))

    assert await asyncio.to_thread(run) == 0
    return out.getvalue()
