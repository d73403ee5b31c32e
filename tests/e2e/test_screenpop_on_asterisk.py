"""The screen-pop through the real Asterisk: the caller's inherited IVR_* variables, set before
Queue(), reach the agent's channel (a Local/10XX@agents member, whose dialplan logs them)."""

from __future__ import annotations

import asyncio

import pytest
from helpers import Records, dial, spec

from ivr.lab import Lab

pytestmark = [pytest.mark.asterisk, pytest.mark.usefixtures("no_leftover_calls")]


async def test_the_agents_channel_carries_the_ivr_variables(lab: Lab, records: Records) -> None:
    messages = lab.log_size("messages.log")
    # bank: 1 for English, then 0 for an agent; a member answers, says hello and hangs up
    # (the caller then hears the survey, and hangs up)
    call = spec(
        "200", "10", first_digit_after_s=3.0, digit_gap_s=4.0, hold_s=8, expect_hangup=False
    )
    result = await dial(lab, call)
    assert result.ok, result
    record = await records.one()
    assert record.queue is not None and record.queue.result == "answered"
    line = await asyncio.to_thread(
        lab.wait_for_log,
        f"screen-pop call={record.call_id} reason=main:0 language=en flow=bank",
        since=messages,
    )
    assert "agent 10" in line
