"""Agent queues, post-call surveys and outbound calls through the real Asterisk and AMI.

flows/bank.yaml sends "0" to queue ``default``, whose members are ``Local/10XX@agents``
channels that answer, say hello-world and hang up. Tests change the members with Asterisk's
CLI (remove, pause, a long-talking agent) and put them back with ``queue reload members``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import Records, dial, members, spec
from serve import IvrServe

from ivr.lab import Lab
from ivr.lab.sipp import Answerer

pytestmark = [pytest.mark.asterisk, pytest.mark.usefixtures("no_leftover_calls")]

BANK_AGENT_PATH = ["welcome", "choose_language", "opening_hours", "main", "agent"]
CALLER = "8613800138000"


def outbound_jobs(server: IvrServe, kind: str = "survey") -> list[sqlite3.Row]:
    with sqlite3.connect(server.db_path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM outbound WHERE kind = ? ORDER BY id", (kind,)).fetchall()


async def test_nobody_logged_in_goes_to_agents_busy(lab: Lab, records: Records) -> None:
    with members(lab, pause=True):  # all logged in, all on a break
        result = await dial(lab, spec("200", "10", first_digit_after_s=3.0, digit_gap_s=4.0))
    assert result.ok, result
    record = await records.one()
    assert record.path == [*BANK_AGENT_PATH, "agents_busy", "offer_message", "goodbye"]
    assert record.queue is not None and record.queue.result == "no_agents"
    assert record.outcome == "abandoned"  # asked for a person, got none


async def test_caller_abandons_while_waiting(lab: Lab, records: Records) -> None:
    with members(lab, pause=True, add=("Local/1098@agents/n",)):  # rings, never answers
        call = spec(
            "200", "10", first_digit_after_s=3.0, digit_gap_s=4.0, hold_s=8, expect_hangup=False
        )
        started = time.monotonic()
        result = await dial(lab, call)
        elapsed = time.monotonic() - started
    assert result.ok, result
    record = await records.one()
    assert record.outcome == "abandoned" and record.path == BANK_AGENT_PATH
    visit = record.queue
    assert visit is not None and visit.result == "abandoned" and visit.agent == ""
    assert 3 < visit.wait_s < elapsed, (visit, elapsed)
    assert visit.agents_available == 1 and visit.position == 1


async def test_caller_hangs_up_on_the_agent_then_answers_the_outbound_survey(
    lab: Lab, records: Records, ivr_server: IvrServe, tmp_path: Path
) -> None:
    with members(lab, pause=True, add=("Local/1099@agents/n",)):  # a 20 s conversation
        call = spec(
            "200", "10", first_digit_after_s=3.0, digit_gap_s=4.0, hold_s=5, expect_hangup=False
        )
        result = await dial(lab, call.__class__(**{**call.__dict__, "caller": CALLER}))
        assert result.ok, result
        record = await records.one()
    assert record.caller == CALLER and record.outcome == "transferred"
    assert record.queue is not None and record.queue.result == "answered"
    assert record.queue.agent == "Local/1099@agents/n" and record.survey is None
    [job] = outbound_jobs(ivr_server)
    assert (job["kind"], job["call_id"], job["number"], job["status"]) == (
        "survey",
        record.call_id,
        CALLER,
        "pending",
    )
    assert job["channel"] == f"PJSIP/{CALLER}@survey-line"
    assert job["due_at"] - record.started_at >= 60  # the flow's delay_s (server clock)
    # The SIPp callee answers, hears the intro, presses 4, then 1. The survey is made due
    # now instead of in 60 s; the dialer picks it up within a second.
    callee = Answerer(("4", "1"), tmp_path, first_digit_after_s=6.0, gaps_s=(3.0,))
    callee.start()
    try:
        with sqlite3.connect(ivr_server.db_path) as conn:
            conn.execute("UPDATE outbound SET due_at = 0 WHERE id = ?", (job["id"],))
        answered = await asyncio.to_thread(callee.wait, 60)
    finally:
        callee.stop()
    assert answered.ok, answered
    deadline = time.monotonic() + 10
    while (done := outbound_jobs(ivr_server)[0])["status"] != "done":
        assert time.monotonic() < deadline, dict(done)
        await asyncio.sleep(0.2)
    assert done["attempts"] == 1 and done["last_result"] == "completed"
    [stored] = [r for r in await records.all() if r.call_id == record.call_id]
    survey = stored.survey
    assert survey is not None and (survey.mode, survey.status) == ("outbound", "completed")
    assert [(a.question, a.value) for a in survey.answers] == [("satisfied", 4), ("solved", 1)]
    ivr_server.wait_for_log(f"[{record.call_id}] outbound survey after_call: completed")


async def test_campaign_calls_each_number_once_and_records_interest(
    lab: Lab, records: Records, ivr_server: IvrServe, tmp_path: Path
) -> None:
    from ivr.cli import main

    call_list = tmp_path / "spring.csv"
    call_list.write_text("number,name\n8613900000001,Li\n8613900000002,Wang\n")
    callee = Answerer(("1",), tmp_path, first_digit_after_s=3.0)  # "1": interested
    callee.start()
    try:
        code = await asyncio.to_thread(
            main,
            [
                "campaign",
                "start",
                str(call_list),
                "--flow",
                "offer",
                "--db",
                str(ivr_server.db_path),
                "--dial",
                "PJSIP/{number}@survey-line",
                "--rate",
                "1",
                "--max-concurrent",
                "1",
                "--attempts",
                "1",
            ],
        )
        assert code == 0
        answered = await asyncio.to_thread(callee.wait, 60)
        assert answered.ok, answered
        deadline = time.monotonic() + 45  # the second number: nobody answers any more
        while {j["status"] for j in outbound_jobs(ivr_server, "campaign")} - {"done", "failed"}:
            assert time.monotonic() < deadline, [dict(j) for j in outbound_jobs(ivr_server)]
            await asyncio.sleep(0.5)
    finally:
        callee.stop()
    first, second = outbound_jobs(ivr_server, "campaign")
    assert (first["number"], first["status"], first["attempts"], first["last_result"]) == (
        "8613900000001",
        "done",
        1,
        "interested",
    )
    assert (second["status"], second["attempts"]) == ("failed", 1)
    assert second["last_result"] != "answered"
    [record] = await records.new(1)
    assert record.flow == "offer" and record.call_id == f"ivr-job-{first['id']}-1"
    assert record.variables["campaign"] == "spring" and record.variables["name"] == "Li"
    assert record.variables["interested"] == "yes" and record.outcome == "transferred"
    assert record.queue is not None and record.queue.result == "answered"
    status = await asyncio.to_thread(
        main, ["campaign", "status", "spring", "--db", str(ivr_server.db_path)]
    )
    assert status == 0


def kill_ami_connections() -> None:
    """Cut every TCP connection to AMI (5038) as a network failure would (ss -K)."""
    subprocess.run(
        ["ss", "-K", "dst", "127.0.0.1", "dport", "=", "5038"], check=True, capture_output=True
    )


async def test_ami_cut_mid_call_the_call_goes_on_and_ami_comes_back(
    lab: Lab, records: Records, ivr_server: IvrServe
) -> None:
    log_from = ivr_server.log_size()
    call = replace(spec("200", "1051", first_digit_after_s=3.0), gaps_s=(4.0, 9.0, 3.0))
    dialling = asyncio.create_task(dial(lab, call))
    await asyncio.sleep(7.3)  # "0" was pressed: the caller is in the queue / with the agent
    kill_ami_connections()
    result = await dialling
    assert result.ok, result
    record = await records.one()
    assert record.queue is not None and record.queue.result == "answered"
    assert record.survey is not None and record.survey.status == "completed"
    ivr_server.wait_for_log("AMI connection lost", since=log_from)
    ivr_server.wait_for_log("AMI logged in", since=log_from, timeout_s=15)
    # the next caller gets the full check again (agents counted over AMI)
    await records.snapshot()
    result = await dial(lab, call)
    assert result.ok, result
    again = await records.one()
    assert again.queue is not None and again.queue.agents_available == 2
