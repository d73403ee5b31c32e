"""The webhook sender against a receiver on loopback that verifies every signature with the
stock ``standardwebhooks`` package: down then up (each event once, in order per call),
backoff and max age (failed), a hanging receiver (nobody emitting waits)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from support.flowkit import flow
from support.webhook_receiver import SECRET, Receiver

from ivr.app.webhooks import Outbox, WebhookSender
from ivr.call.channel import CallInfo
from ivr.call.events import Event
from ivr.call.record import CallRecord
from ivr.clock import system_clock
from ivr.config import Secret, WebhookSettings
from ivr.flow.numbers import NumberPolicy, effective
from ivr.flow.queue_node import QueueNode
from ivr.metrics import Metrics
from ivr.outbound.answer import run_job
from ivr.outbound.jobs import Outbound
from ivr.runtime.context import BookedBy
from ivr.runtime.interpreter import Services
from ivr.runtime.sim import ScriptedChannel, parse_tokens
from ivr.store.records import RecordStore
from ivr.store.webhooks import WebhookStore


def settings(url: str, **kw: object) -> WebhookSettings:
    return WebhookSettings(url=url, secret=Secret(SECRET.encode()), retry_s=0.05, **kw)  # type: ignore[arg-type]


class Parts:
    def __init__(self, store: RecordStore, s: WebhookSettings) -> None:
        self.table = WebhookStore(store)
        self.metrics = Metrics()
        self.sender = WebhookSender(self.table, s, system_clock, self.metrics.webhook, poll_s=0.05)
        self.outbox = Outbox(self.table, s.events, system_clock, on_stored=self.sender.wake)

    async def start(self) -> None:
        self.outbox.start()
        await self.sender.start()

    async def close(self) -> None:
        await self.outbox.close()
        await self.sender.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    await r.stop()


def events_of(calls: int) -> list[Event]:
    kinds = ("agent.offered", "survey.answered", "call.ended")
    return [
        Event(k, f"call-{c}", {"call_id": f"call-{c}", "n": i})
        for i, k in enumerate(kinds)
        for c in range(calls)
    ]


async def test_receiver_down_then_up_every_event_arrives_once_in_order(
    store: RecordStore, receiver: Receiver
) -> None:
    parts = Parts(store, settings(receiver.url))
    await parts.start()
    try:
        for event in events_of(4):
            parts.outbox.emit(event)
        for _ in range(200):  # the receiver is down: every call's first event is retried
            if (await parts.table.counts())["pending"] == 12 and all(
                r.attempts >= 2 for r in await parts.table.rows() if "offered" in r.event
            ):
                break
            await asyncio.sleep(0.02)
        rows = await parts.table.rows()
        assert {r.attempts for r in rows if r.event != "agent.offered"} == {0}  # waited
        assert all("ClientConnectorError" in r.last_error for r in rows if r.attempts)
        await receiver.start()
        await receiver.wait_for(12)
        await asyncio.sleep(0.3)  # nothing more comes
    finally:
        await parts.close()
    assert len(receiver.taken) == 12 and len(set(receiver.ids)) == 12 and receiver.refused == 0
    for c in range(4):
        assert receiver.of(f"call-{c}") == ["agent.offered", "survey.answered", "call.ended"]
    assert await parts.table.counts() == {"pending": 0, "sent": 12, "failed": 0}
    [body] = [
        d for d in receiver.taken if d["type"] == "call.ended" and d["data"]["call_id"] == "call-0"
    ]
    assert body["id"].startswith("msg_") and body["timestamp"].endswith("Z")
    text = parts.metrics.render().decode()
    assert 'ivr_webhooks_total{event="call.ended",result="sent"} 4.0' in text
    assert 'ivr_webhooks_total{event="agent.offered",result="retry"}' in text


async def test_an_event_that_outlives_max_age_fails_and_lets_the_next_go(
    store: RecordStore, receiver: Receiver
) -> None:
    receiver.mode = 503
    await receiver.start()
    parts = Parts(store, settings(receiver.url, max_age_s=0.3))
    await parts.start()
    try:
        parts.outbox.emit(Event("agent.offered", "c1", {"call_id": "c1"}))
        await asyncio.sleep(0.05)
        parts.outbox.emit(Event("call.ended", "c1", {"call_id": "c1"}))
        for _ in range(100):
            if (await parts.table.counts())["failed"] == 1:
                break
            await asyncio.sleep(0.02)
        receiver.mode = "ok"  # the call's next event waited for the first to fail
        await receiver.wait_for(1)
    finally:
        await parts.close()
    [failed] = await parts.table.rows("failed")
    assert failed.event == "agent.offered" and failed.last_error.startswith("HTTP 503")
    assert failed.attempts >= 2
    assert receiver.of("c1") == ["call.ended"]


async def test_a_refused_signature_is_retried_not_sent(
    store: RecordStore, receiver: Receiver
) -> None:
    receiver.secret = "whsec_" + "b3RoZXIgc2VjcmV0IG9mIDI0IGJ5dGVzISE="  # not ours
    await receiver.start()
    parts = Parts(store, settings(receiver.url))
    await parts.start()
    try:
        parts.outbox.emit(Event("call.ended", "c1", {"call_id": "c1"}))
        for _ in range(100):
            if receiver.refused >= 2:
                break
            await asyncio.sleep(0.02)
    finally:
        await parts.close()
    assert receiver.refused >= 2 and receiver.taken == []
    [row] = await parts.table.rows()
    assert row.status == "pending" and row.last_error.startswith("HTTP 401")


async def test_a_hanging_receiver_never_holds_up_who_emits(
    store: RecordStore, receiver: Receiver
) -> None:
    receiver.mode = "hang"
    await receiver.start()
    parts = Parts(store, settings(receiver.url, timeout_s=0.5))
    await parts.start()
    try:
        started = time.perf_counter()
        for i in range(200):
            parts.outbox.emit(Event("call.ended", f"c{i}", {"call_id": f"c{i}"}))
        assert time.perf_counter() - started < 0.1
        for _ in range(150):  # each post gives up after timeout_s and is due again later
            rows = await parts.table.rows(limit=500)
            if any("no answer" in r.last_error for r in rows):
                break
            await asyncio.sleep(0.02)
        assert any("no answer from 127.0.0.1" in r.last_error for r in rows)
    finally:
        await parts.close()
    assert len(await parts.table.rows(limit=500)) == 200  # all stored, none lost


async def test_the_outbox_keeps_only_the_chosen_events(store: RecordStore) -> None:
    table = WebhookStore(store)
    outbox = Outbox(table, ("call.ended",), system_clock)
    outbox.start()
    outbox.emit(Event("agent.offered", "c1", {}))
    outbox.emit(Event("call.ended", "c1", {"call_id": "c1"}))
    await outbox.close()
    assert [r.event for r in await table.rows()] == ["call.ended"]


CALLBACK_FLOW = """
    start: agent
    timezone: UTC
    nodes:
      agent:
        queue:
          name: cards
          callback: {prompt: "Press 1.", then: booked, dial: "PJSIP/{number}@callback-line"}
          when_unavailable: booked
          when_timeout: booked
      booked: {play: "We will call you back.", next: hangup}
"""


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


async def test_a_booked_callback_is_announced_once_with_the_number_masked(
    store: RecordStore,
) -> None:
    outbound = Outbound(store, clock=lambda: 1000.0)
    outbound.events = sink = Sink()
    f = flow(CALLBACK_FLOW)
    node = f.nodes["agent"]
    assert isinstance(node, QueueNode)
    policy = effective(NumberPolicy(), None)
    by = BookedBy("c1", f.name, "8613800138000")
    assert await outbound.book_callback(by, node, "8613800138000", 60.0, policy) is None
    assert await outbound.book_callback(by, node, "8613800138000", 60.0, policy) is None
    [booked] = sink.events  # the second was already booked: no second event
    assert (booked.kind, booked.call_id) == ("callback.booked", "c1")
    assert booked.data == {
        "call_id": "c1",
        "flow": "test",
        "node": "agent",
        "number": "***8000",
        "due_at": 1060.0,
    }


SURVEY_FLOW = """
    start: agent
    timezone: UTC
    surveys:
      after_call:
        questions:
          - {id: satisfied, prompt: "How satisfied were you, 1 to 5?"}
        outbound: {dial: "PJSIP/{number}@survey-line", delay_s: 0}
    nodes:
      agent:
        queue: {name: cards, when_unavailable: hangup, when_timeout: hangup}
        survey: after_call
"""


async def test_an_outbound_survey_is_announced_against_the_call_it_is_about(
    store: RecordStore,
) -> None:
    f = flow(SURVEY_FLOW)
    outbound = Outbound(store, clock=system_clock)
    await store.begin(CallRecord("c1", f.name, f.version, caller="5550100", started_at=1.0))
    policy = effective(NumberPolicy(), None)
    by = BookedBy("c1", f.name, "5550100")
    assert await outbound.book_survey(by, f.surveys["after_call"], policy) is None
    [job] = await outbound.due()
    assert await outbound.start_attempt(job)
    sink = Sink()
    channel = ScriptedChannel(parse_tokens("5"), info=CallInfo(uniqueid="o-1"))
    services = Services(clock=system_clock, events=sink)
    await run_job(str(job.id), f, channel, services, store, outbound)
    [answered] = sink.events  # not the survey call's own id
    assert (answered.kind, answered.call_id) == ("survey.answered", "c1")
    assert answered.data["status"] == "completed" and answered.data["answers"][0]["value"] == 5
