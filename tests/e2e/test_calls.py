"""Real SIP calls (SIPp) through the lab's Asterisk 22 into the real ``ivr serve``.

Every test checks the call record the server wrote to SQLite, not only SIPp's verdict.
Prompts really play here (rendered by ``ivr serve`` at start-up), so digits are sent at
realistic moments: the first one during the menu prompt (barge-in), later ones with gaps.

Timings of flows/main.yaml as rendered by espeak-ng: welcome ~2.0 s, menu prompt ~9.1 s,
short prompt ~3.3 s, "didn't hear" ~2.3 s, "not a choice" ~2.6 s, menu timeout 4 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import socket
import time
from dataclasses import replace

import pytest
from helpers import (
    Records,
    active_calls,
    dial,
    load,
    played,
    seconds,
    sound,
    spec,
    wait_until_idle,
)
from serve import ROOT, IvrServe

from ivr.cli import main
from ivr.flow import model as m
from ivr.flow.library import load_library
from ivr.flow.model import Flow
from ivr.lab import Lab

pytestmark = [pytest.mark.asterisk, pytest.mark.usefixtures("no_leftover_calls")]

MAIN_PATH = ["welcome", "menu", "support", "goodbye"]
BANK_AGENT_PATH = ["welcome", "choose_language", "opening_hours", "main", "agent"]


@pytest.fixture(scope="module")
def main_flow() -> Flow:
    return load_library([str(ROOT / "flows")], None).flows["main"]


def node_sound(flow: Flow, node: str) -> str:
    found = flow.nodes[node]
    assert isinstance(found, m.PlayNode)
    return sound(found.prompt)


def menu_node(flow: Flow) -> m.MenuNode:
    menu = flow.nodes["menu"]
    assert isinstance(menu, m.MenuNode)
    return menu


# --------------------------------------------------------------------------- 1. menu choices
async def test_main_menu_digit_reaches_support(lab: Lab, records: Records) -> None:
    result = await dial(lab, spec("100", "2"))
    assert result.ok, result
    record = await records.one()
    assert (record.flow, record.dnis, record.caller) == ("main", "100", "sipp")
    assert record.path == MAIN_PATH
    assert [(i.node, i.kind, i.value) for i in record.inputs] == [("menu", "dtmf", "2")]
    # barge-in: taken while the 9 s menu prompt played (it would end ~11 s into the call)
    assert record.inputs[0].at_s < 9
    assert record.outcome == "self_service" and record.end_node == "goodbye"
    assert record.error is None and record.transfer_target is None


async def test_bank_english_agent_then_in_call_survey(
    lab: Lab, records: Records, ivr_server: IvrServe
) -> None:
    # "1" during the language prompt (after the 1.5 s welcome), "0" during the main menu;
    # a simulated agent answers and hangs up (~2 s), then the survey: "5", then "1"
    call = replace(spec("200", "1051", first_digit_after_s=3.0), gaps_s=(4.0, 9.0, 3.0))
    result = await dial(lab, call)
    assert result.ok, result  # Asterisk hung up on SIPp: the server ended the call
    record = await records.one()
    assert record.flow == "bank" and record.dnis == "200"
    assert record.path == BANK_AGENT_PATH
    assert [(i.node, i.kind, i.value) for i in record.inputs] == [
        ("choose_language", "dtmf", "1"),
        ("main", "dtmf", "0"),
        ("survey:after_call:satisfied", "dtmf", "5"),
        ("survey:after_call:solved", "dtmf", "1"),
    ]
    assert record.language == "en"
    assert record.outcome == "transferred" and record.end_node == "agent"
    visit = record.queue
    assert visit is not None and visit.queue == "default" and visit.result == "answered"
    assert visit.agent.startswith("Local/100") and 0 <= visit.wait_s < 10, visit
    assert visit.talk_s > 0.5, visit  # the agent's hello-world
    survey = record.survey
    assert survey is not None and (survey.mode, survey.status) == ("in_call", "completed")
    assert [(a.question, a.value) for a in survey.answers] == [("satisfied", 5), ("solved", 1)]
    ivr_server.wait_for_log(f"[{record.call_id}] queue default: answered")
    # the KPIs count it: `ivr report --json` on the server's database
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert (
            await asyncio.to_thread(
                main, ["report", "--json", "--flow", "bank", "--db", str(ivr_server.db_path)]
            )
            == 0
        )
    bank = json.loads(out.getvalue())["flows"]["bank"]
    assert bank["agent_requests"] >= 1 and bank["agent_answer_rate"] is not None
    assert bank["satisfaction_answers"] >= 1 and bank["surveys_offered"] >= 1
    assert bank["satisfaction"] == 1.0  # this call's 5 is the only answer in this module


# --------------------------------------------------------------------------- 2. retries
async def test_silence_follows_the_no_input_rules(
    lab: Lab, records: Records, ivr_server: IvrServe, main_flow: Flow
) -> None:
    log_from = ivr_server.log_size()
    # no key at all: menu, then (no_input max 2) two retries, then `otherwise: goodbye`
    result = await dial(lab, spec("100", hold_s=60))
    assert result.ok, result
    record = await records.one()
    assert [(i.node, i.kind) for i in record.inputs] == [("menu", "no_input")] * 3
    assert record.path == ["welcome", "menu", "goodbye"]
    # the flow ended the call and the caller never reached a served node
    assert record.outcome == "failed_in_ivr" and record.end_node == "goodbye"
    first, second, third = (i.at_s for i in record.inputs)
    # when each node was entered: the menu right after the welcome, goodbye after 3 timeouts
    welcome_at, menu_at, goodbye_at = record.path_at
    assert 0 <= welcome_at < 1 and welcome_at < menu_at < first
    assert third - 0.01 <= goodbye_at < third + 2  # rounded to ms
    menu = menu_node(main_flow)
    retry = [sound(menu.no_input.prompt), sound(menu.short_prompt)]
    # the prompts' real lengths (espeak-ng versions differ between machines) + the 4 s timeout
    opening = seconds(node_sound(main_flow, "welcome")) + seconds(sound(menu.prompt))
    assert opening + 4 - 1 < first < opening + 4 + 3, (first, opening)
    for gap in (second - first, third - second):  # "didn't hear" + short prompt + 4 s
        retry_s = sum(seconds(name) for name in retry)
        assert retry_s + 4 - 1 < gap < retry_s + 4 + 3, (gap, retry_s)
    assert played(ivr_server, record.call_id, log_from) == [
        node_sound(main_flow, "welcome"),
        sound(menu.prompt),
        *retry,
        *retry,
        node_sound(main_flow, "goodbye"),
    ]


async def test_wrong_digit_gives_no_match_then_a_retry(
    lab: Lab, records: Records, ivr_server: IvrServe, main_flow: Flow
) -> None:
    log_from = ivr_server.log_size()
    # "0" interrupts the menu prompt; "2" comes during the retry's short prompt. (The wrong
    # digit is "0" because SIPp replays its RFC 2833 pcaps verbatim and Asterisk drops an
    # event whose RTP timestamp is older than the last one: "9" then "2" loses the "2".)
    result = await dial(lab, spec("100", "02", digit_gap_s=3.5))
    assert result.ok, result
    record = await records.one()
    assert [(i.node, i.kind, i.value) for i in record.inputs] == [
        ("menu", "no_match", "0"),
        ("menu", "dtmf", "2"),
    ]
    assert record.path == MAIN_PATH
    assert record.outcome == "self_service"
    menu = menu_node(main_flow)
    assert played(ivr_server, record.call_id, log_from)[1:4] == [
        sound(menu.prompt),
        sound(menu.no_match.prompt),
        sound(menu.short_prompt),
    ]


# --------------------------------------------------------------------------- 3. hang-up
async def test_caller_hangs_up_mid_menu(lab: Lab, records: Records, ivr_server: IvrServe) -> None:
    log_from = ivr_server.log_size()
    # SIPp sends BYE 5 s after the 200 OK: 3 s into the menu prompt
    result = await dial(lab, spec("100", hold_s=5, expect_hangup=False))
    assert result.ok, result
    record = await records.one()
    assert record.outcome == "abandoned"
    assert record.path == ["welcome", "menu"] and record.end_node == "menu"
    assert record.inputs == []
    assert record.ended_at is not None and record.ended_at - record.started_at < 7
    # the server noticed the HANGUP and closed the FastAGI socket itself ...
    ivr_server.wait_for_log(f"[{record.call_id}] caller hung up during", since=log_from)
    ivr_server.wait_for_log(f"[{record.call_id}] call ended", since=log_from)
    channels, sockets = await wait_until_idle(lab)
    assert sockets == [], f"FastAGI connections left open: {sockets}"
    # ... so Asterisk left AGI() and tore the channel down
    assert channels.startswith("0 active channels"), channels
    assert active_calls(channels) == 0


# --------------------------------------------------------------------------- 4. unknown flow
def ami_originate_with_flow(lab: Lab, flow: str) -> list[str]:
    """AMI Originate of ``Local/s@ivr-run`` with IVR_FLOW set (no extension for it exists).

    The ;1 half waits in Wait(); the ;2 half runs the project's [ivr-run] dialplan as an
    inbound call would, with the variable copied over from ;1."""
    action = (
        f"Action: Login\r\nUsername: ivr\r\nSecret: {lab.ami_secret}\r\n\r\n"
        "Action: Originate\r\nActionID: e2e-unknown-flow\r\nChannel: Local/s@ivr-run\r\n"
        f"Application: Wait\r\nData: 20\r\nVariable: IVR_FLOW={flow}\r\nAsync: true\r\n\r\n"
        "Action: Logoff\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", 5038), timeout=5) as sock:
        sock.sendall(action.encode())
        data = b""
        while b"Goodbye" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    lines = data.decode(errors="replace").splitlines()
    assert "Message: Authentication accepted" in lines, lines
    assert "Message: Originate successfully queued" in lines, lines
    return lines


async def test_unknown_flow_is_handed_back_to_the_dialplan(
    lab: Lab, records: Records, ivr_server: IvrServe
) -> None:
    log_from = ivr_server.log_size()
    messages = lab.log_size("messages.log")
    queue_log = lab.log_size("queue_log")
    await asyncio.to_thread(ami_originate_with_flow, lab, "nosuchflow")
    line = await asyncio.to_thread(
        ivr_server.wait_for_log, "asked for flow 'nosuchflow', which is not loaded", since=log_from
    )
    # the call's id is the line's call field: "[1765100000.12] asked for flow ..."
    call_id = re.search(r"\[([^\]]+)\] asked for flow", line).group(1)  # type: ignore[union-attr]
    # IVR_RESULT=unknown_flow sends the call to the dialplan's fallback: apology, queue
    warning = await asyncio.to_thread(
        lab.wait_for_log, "IVR flow nosuchflow at 127.0.0.1:4573 did not finish", since=messages
    )
    assert "AGISTATUS=SUCCESS IVR_RESULT=unknown_flow" in warning
    enter = await asyncio.to_thread(
        lab.wait_for_log, "|ENTERQUEUE|", name="queue_log", since=queue_log
    )
    assert "|default|" in enter
    await asyncio.to_thread(
        lab.wait_for_log, "|CONNECT|", name="queue_log", since=queue_log, timeout_s=15
    )
    ivr_server.wait_for_log(f"[{call_id}] call ended", since=log_from)
    # the simulated agent hangs up after hello-world, which ends both Local halves
    channels, sockets = await wait_until_idle(lab, timeout_s=15)
    assert channels.startswith("0 active channels") and sockets == []
    # unknown flows leave no call record (the app hands the call back before starting one)
    assert [r.call_id for r in await records.all() if r.call_id not in records.before] == []


# --------------------------------------------------------------------------- 5. load
async def test_twenty_concurrent_calls_all_recorded(lab: Lab, records: Records) -> None:
    main_calls = spec("100", "2")
    # bank callers reach an agent, then hang up during the survey (SIPp's BYE after 20 s)
    bank_calls = spec(
        "200", "10", first_digit_after_s=3.0, digit_gap_s=4.0, hold_s=20, expect_hangup=False
    )
    started = time.monotonic()
    main_result, bank_result = await asyncio.gather(
        load(lab, main_calls, calls=10, rate=10), load(lab, bank_calls, calls=10, rate=10)
    )
    elapsed = time.monotonic() - started
    assert main_result.ok, main_result
    assert bank_result.ok, bank_result
    fresh = await records.new(20, timeout_s=15)
    main = [r for r in fresh if r.flow == "main"]
    bank = [r for r in fresh if r.flow == "bank"]
    assert len(main) == len(bank) == 10
    assert len({r.call_id for r in fresh}) == 20
    for r in main:
        assert (r.outcome, r.path, [(i.kind, i.value) for i in r.inputs]) == (
            "self_service",
            MAIN_PATH,
            [("dtmf", "2")],
        ), r
    for r in bank:
        assert (r.outcome, r.path) == ("transferred", BANK_AGENT_PATH), r
        assert r.queue is not None and r.queue.result == "answered", r
        assert r.survey is not None and r.survey.status == "no_answer", r
        assert [i.value for i in r.inputs][:2] == ["1", "0"], r
    # they really overlapped: most calls were up at the same moment
    peak = max(
        sum(1 for r in fresh if r.started_at <= t < (r.ended_at or 0))
        for t in (r.started_at for r in fresh)
    )
    assert peak >= 15, peak
    assert elapsed < 45, elapsed
    channels, sockets = await wait_until_idle(lab)
    assert channels.startswith("0 active channels") and sockets == []
