"""The webhook outbox's SQL on SQLite and PostgreSQL: order per call, claims, backoff marks."""

from __future__ import annotations

import asyncio

from support.stores import Db

from ivr.store.records import RecordStore
from ivr.store.webhooks import WebhookStore


async def test_a_calls_later_event_waits_for_its_earlier_one(store: RecordStore) -> None:
    table = WebhookStore(store)
    ids = await table.enqueue(
        [("agent.offered", "c1", "{}"), ("call.ended", "c1", "{}"), ("call.ended", "c2", "{}")],
        now=100.0,
    )
    assert ids == sorted(ids)
    first = await table.claim(now=100.0, lease_s=10)
    assert [(r.id, r.attempts, r.next_at) for r in first] == [
        (ids[0], 1, 110.0),
        (ids[2], 1, 110.0),
    ]
    assert await table.claim(now=105.0, lease_s=10) == []  # c1's head is out; c1's next waits
    await table.retry(ids[0], "HTTP 503", at=120.0)
    await table.sent(ids[2], now=106.0)
    assert await table.claim(now=119.0, lease_s=10) == []  # c1's head retries at 120
    again = await table.claim(now=120.0, lease_s=10)
    assert [(r.id, r.attempts) for r in again] == [(ids[0], 2)]
    await table.give_up(ids[0], "HTTP 500")  # failed: the call's next event goes
    [after] = await table.claim(now=121.0, lease_s=10)
    assert after.id == ids[1] and after.event == "call.ended"
    await table.sent(after.id, now=122.0)
    assert await table.counts() == {"pending": 0, "sent": 2, "failed": 1}
    [failed] = await table.rows("failed")
    assert (failed.id, failed.last_error, failed.attempts) == (ids[0], "HTTP 500", 2)
    assert await table.resend(ids[0], now=200.0)
    assert not await table.resend(ids[0], now=200.0)  # pending now, not failed
    [back] = await table.claim(now=200.0, lease_s=10)
    assert (back.id, back.attempts, back.created_at) == (ids[0], 1, 200.0)


async def test_an_expired_claim_is_due_again(store: RecordStore) -> None:
    table = WebhookStore(store)
    [row_id] = await table.enqueue([("call.ended", "c1", "{}")], now=0.0)
    assert len(await table.claim(now=1.0, lease_s=30)) == 1  # the sender died mid-post
    assert await table.claim(now=30.0, lease_s=30) == []
    [row] = await table.claim(now=31.0, lease_s=30)
    assert (row.id, row.attempts) == (row_id, 2)


async def test_events_of_no_call_go_together(store: RecordStore) -> None:
    table = WebhookStore(store)
    await table.enqueue([("message.recorded", "", "{}")] * 3, now=0.0)
    assert len(await table.claim(now=0.0, lease_s=5)) == 3


async def test_prune_deletes_old_sent_events_only(store: RecordStore) -> None:
    table = WebhookStore(store)
    a, b, c = await table.enqueue([("call.ended", x, "{}") for x in "abc"], now=0.0)
    await table.claim(now=0.0, lease_s=5)
    await table.sent(a, now=10.0)
    await table.sent(b, now=100.0)
    await table.give_up(c, "gone")
    assert await table.prune(before=50.0) == 1
    assert {r.id for r in await table.rows()} == {b, c}


async def test_two_senders_never_claim_one_event(db: Db) -> None:
    one, two = await db.open(), await db.open()
    try:
        await WebhookStore(one).enqueue([("call.ended", f"c{i}", "{}") for i in range(200)], 0.0)
        claims = await asyncio.gather(
            *(WebhookStore(s).claim(now=1.0, lease_s=60, limit=20) for s in [one, two] * 10)
        )
        ids = [r.id for rows in claims for r in rows]
        assert len(ids) == len(set(ids)) == 200
    finally:
        await one.close()
        await two.close()


async def test_next_due_skips_events_waiting_behind_their_call(store: RecordStore) -> None:
    table = WebhookStore(store)
    assert await table.next_due() is None
    first, _ = await table.enqueue([("agent.offered", "c1", "{}"), ("call.ended", "c1", "{}")], 0.0)
    await table.claim(now=0.0, lease_s=5)
    await table.retry(first, "HTTP 503", at=120.0)
    assert await table.next_due() == 120.0  # not 0.0: the call's later event waits for it
    await table.enqueue([("call.ended", "c2", "{}")], now=50.0)
    assert await table.next_due() == 50.0
