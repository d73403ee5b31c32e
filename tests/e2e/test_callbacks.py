"""Queued callback through the real Asterisk: booked by a caller, kept across a server
restart, placed once over AMI when calling hours open, answered by a SIPp callee.

The module runs its own ``ivr serve`` on a copy of flows/ where the bank offers the callback
at any wait (``over_s: 0``) and calls back only from 12:00; the server clock is pinned to a
Monday 10:00 in Shanghai, then restarted at 13:00.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import Records, dial, members, spec
from serve import ROOT, BalanceStub, IvrServe
from support.instants import next_open_monday

from ivr.lab import Lab
from ivr.lab.sipp import Answerer

pytestmark = [pytest.mark.asterisk, pytest.mark.usefixtures("no_leftover_calls")]

CALLER = "8613800138000"
MORNING = next_open_monday(ROOT / "flows" / "bank.yaml", 10)  # the next open Monday, 10:00
AFTERNOON = MORNING.replace(hour=13)


@pytest.fixture(scope="module")
def callback_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    flows = tmp_path_factory.mktemp("flows")
    for f in (ROOT / "flows").glob("*.yaml"):
        shutil.copy(f, flows)
    bank = flows / "bank.yaml"
    text = bank.read_text(encoding="utf-8")
    patched = text.replace("over_s: 120", "over_s: 0").replace(
        'hours: {mon-fri: "08:00-20:00", sat: "09:00-17:00"}', 'hours: {mon-sun: "12:00-23:00"}'
    )
    assert patched.count("over_s: 0") == 1 and "12:00-23:00" in patched
    bank.write_text(patched, encoding="utf-8")
    return flows


@pytest.fixture(scope="module")
def ivr_server(
    lab: Lab,
    balance_stub: BalanceStub,
    callback_flows: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[IvrServe]:
    """This module's server (overrides conftest's): the patched flows, a morning clock."""
    server = IvrServe(
        tmp_path_factory.mktemp("ivr-serve"),
        http_base_url=balance_stub.base_url,
        clock_at=MORNING,
        ami_secret=lab.ami_secret,
        flows_dir=callback_flows,
        name="ivr-serve-callbacks",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def jobs(server: IvrServe) -> list[sqlite3.Row]:
    with sqlite3.connect(server.db_path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM outbound ORDER BY id").fetchall()


async def test_callback_booked_survives_a_restart_and_is_placed_once(
    lab: Lab, records: Records, ivr_server: IvrServe, tmp_path: Path
) -> None:
    # "1" English, "0" agent; the offer plays at once: "1" accepts; the number is read back
    # ("you entered 8 6 1 3 ..., if correct press 1"): "1" confirms
    call = replace(
        spec("200", "1011", first_digit_after_s=3.0, hold_s=60),
        caller=CALLER,
        gaps_s=(4.0, 2.5, 12.0),
    )
    result = await dial(lab, call)
    assert result.ok, result
    record = await records.one()
    assert record.caller == CALLER and record.path[-2:] == ["agent", "callback_booked"]
    assert record.queue is not None and record.queue.result == "callback"
    assert record.outcome == "transferred"  # handed to the agents, by callback
    assert [(i.node, i.kind, i.value) for i in record.inputs][-2:] == [
        ("agent", "dtmf", "1"),
        ("agent", "confirm", "1"),
    ]
    [job] = jobs(ivr_server)
    assert (job["kind"], job["call_id"], job["number"], job["channel"]) == (
        "callback",
        record.call_id,
        CALLER,
        f"PJSIP/{CALLER}@callback-line",
    )
    await asyncio.sleep(3)  # 10:00: outside the callback hours, nothing is dialled
    [job] = jobs(ivr_server)
    assert (job["status"], job["attempts"]) == ("pending", 0)

    # Restart at 13:00 with the same database: the callback is placed once
    ivr_server.stop()
    callee = Answerer(("5", "1"), tmp_path, first_digit_after_s=8.0, gaps_s=(3.0,))
    callee.start()
    afternoon = IvrServe(
        ivr_server.workdir,
        http_base_url=ivr_server.http_base_url,
        clock_at=AFTERNOON,
        ami_secret=lab.ami_secret,
        flows_dir=ivr_server.flows_dir,
        name="ivr-serve-afternoon",
    )
    afternoon.start()
    try:
        answered = await asyncio.to_thread(callee.wait, 90)
        assert answered.ok, answered
        deadline = time.monotonic() + 15
        while (done := jobs(afternoon)[0])["status"] != "done":
            assert time.monotonic() < deadline, dict(done)
            await asyncio.sleep(0.2)
        assert done["attempts"] == 1 and done["last_result"] == "answered"
        back = [r for r in await records.all() if r.variables.get("callback_for") == record.call_id]
        assert len(back) == 1, back
        callback = back[0]
        assert callback.queue is not None and callback.queue.result == "answered"
        assert callback.outcome == "transferred" and callback.path[0] == "agent"
        assert callback.survey is not None and [a.value for a in callback.survey.answers] == [5, 1]
        afternoon.wait_for_log(
            f"[{record.call_id}] placing callback call {job['id']} (attempt 1 of 3)"
        )
        await asyncio.sleep(2)
        assert len(jobs(afternoon)) == 1 and jobs(afternoon)[0]["attempts"] == 1
    finally:
        callee.stop()
        afternoon.stop()
        ivr_server.start()  # the module's server again, for the fixtures that follow


async def test_the_callback_key_works_while_the_hold_music_plays(
    lab: Lab, records: Records, ivr_server: IvrServe
) -> None:
    # "1" English, "0" agent; no key for the offer made before joining (it times out after
    # 5 s), so the caller waits in the queue, where the only agent never answers. 25 s after
    # the "0" the music plays: "1" leaves Queue() for a callback, "1" confirms the number.
    before = {job["id"] for job in jobs(ivr_server)}
    log_from = ivr_server.log_size()
    with members(lab, pause=True, add=("Local/1098@agents/n",)):
        call = replace(
            spec("200", "1011", first_digit_after_s=3.0, hold_s=60),
            caller=CALLER,
            gaps_s=(4.0, 25.0, 6.0),
        )
        result = await dial(lab, call)
    assert result.ok, result
    record = await records.one()
    assert record.path[-2:] == ["agent", "callback_booked"]
    visit = record.queue
    assert visit is not None and visit.result == "callback" and visit.agent == ""
    assert 5 < visit.wait_s < 25, visit  # it did wait in the queue before the key
    assert [(i.node, i.kind, i.value) for i in record.inputs][-2:] == [
        ("agent", "dtmf", "1"),
        ("agent", "confirm", "1"),
    ]
    ivr_server.wait_for_log(
        f"[{record.call_id}] queue default: callback booked from the queue (key 1)", since=log_from
    )
    [job] = [job for job in jobs(ivr_server) if job["id"] not in before]
    assert (job["kind"], job["call_id"], job["number"], job["status"]) == (
        "callback",
        record.call_id,
        CALLER,
        "pending",
    )


async def test_a_premium_number_cannot_book_a_callback(
    lab: Lab, records: Records, ivr_server: IvrServe
) -> None:
    """Toll fraud: a caller presenting a premium number (1900..., allowed by no policy) who
    accepts the offer hears the refusal and goes back in line; nothing is booked."""
    before = len(jobs(ivr_server))
    premium = "19005550123"
    call = replace(
        spec("200", "101", first_digit_after_s=3.0, hold_s=30, expect_hangup=False),
        caller=premium,
        gaps_s=(4.0, 2.5),
    )
    result = await dial(lab, call)
    assert result.ok, result
    record = await records.one()
    assert record.caller == premium and "no_callback" in record.path
    refused = [i for i in record.inputs if i.kind == "callback_refused"]
    assert len(refused) == 1 and refused[0].node == "agent", record.inputs
    assert premium not in str(record.inputs)  # the number is masked on the record
    assert len(jobs(ivr_server)) == before  # nothing booked, nothing will be dialled
