"""The published flow versions (:mod:`ivr.store.flow_versions`) on both engines: rows in
order with who, when, why and the node; no duplicate at a restart; the calls that ran each
version counted from ``calls.flow_version``; a version found by hash, id or unique start."""

from __future__ import annotations

import asyncio
import time

from support.stores import Db

from ivr.call.record import CallRecord
from ivr.store.flow_versions import FlowVersionStore
from ivr.store.records import RecordStore

A = "main: 1\n"
B = "main: 2\n"


async def call(store_: RecordStore, call_id: str, version: str, flow: str = "main") -> None:
    record = CallRecord(
        call_id=call_id, flow=flow, flow_version=version, started_at=time.time() - 60
    )
    await store_.begin(record)
    record.ended_at = record.started_at + 5
    record.outcome = "self_service"
    await store_.finish(record)


async def test_published_versions_are_kept_newest_first_with_their_calls(db: Db) -> None:
    store = await db.open(node="node-a")
    try:
        table = FlowVersionStore(store)
        now = time.time()
        first = await table.publish(
            flow="main", version="aaaa11112222", file="flows/main.yaml", content=A,
            now=now - 30, reason="start",
        )  # fmt: skip
        second = await table.publish(
            flow="main", version="v2+bbbb33334444", file="flows/main.yaml", content=B,
            now=now - 20, by="alice", reason="reload",
        )  # fmt: skip
        await table.publish(
            flow="other", version="cccc55556666", file="flows/other.yaml", content="x: 1\n",
            now=now - 10, reason="start",
        )  # fmt: skip
        assert first is not None and second is not None and second > first
        for i in range(3):
            await call(store, f"c{i}", "v2+bbbb33334444")
        await call(store, "c9", "aaaa11112222")
        await call(store, "d1", "aaaa11112222", flow="other")  # another flow's call

        rows = await table.history("main")
        assert [(r.id, r.version, r.calls) for r in rows] == [
            (second, "v2+bbbb33334444", 3),
            (first, "aaaa11112222", 1),
        ]
        newest = rows[0]
        assert (newest.published_by, newest.reason, newest.node) == ("alice", "reload", "node-a")
        assert abs(newest.published_at - (now - 20)) < 1e-3
        assert newest.content is None  # lists leave the text out
        got = await table.get(first)
        assert got is not None and got.content == A and got.file == "flows/main.yaml"
        assert await table.get(9999) is None
        latest = await table.latest("main")
        assert latest is not None and latest.id == second and latest.content == B
        assert await table.latest("nothing") is None
        assert await table.history("nothing") == []
    finally:
        await store.close()


async def test_a_restart_adds_no_duplicate_but_a_rollback_does(db: Db) -> None:
    store = await db.open()
    try:
        table = FlowVersionStore(store)
        now = time.time()
        kw = {"flow": "main", "file": "main.yaml", "now": now}
        assert await table.publish(version="v1", content=A, reason="start", **kw) is not None
        assert await table.publish(version="v2", content=B, reason="reload", **kw) is not None
        # a restart on v2: already the latest, nothing added
        again = await table.publish(
            version="v2", content=B, reason="start", unless_latest=True, **kw
        )
        assert again is None
        # back to v1: not the latest, so a new row, even with unless_latest
        back = await table.publish(
            version="v1", content=A, reason="rollback to v2", unless_latest=True, **kw
        )
        assert back is not None
        rows = await table.history("main")
        assert [(r.version, r.reason) for r in rows] == [
            ("v1", "rollback to v2"),
            ("v2", "reload"),
            ("v1", "start"),
        ]
    finally:
        await store.close()


async def test_nodes_starting_together_store_a_version_once(db: Db) -> None:
    """Several nodes load the same files at once (a rolling start): each version is stored
    once, not once per node that checked "is it the latest?" before the others wrote."""
    stores = [await db.open(node=f"node-{n}") for n in "abcd"]
    try:
        tables = [FlowVersionStore(s) for s in stores]
        kw = {"flow": "main", "file": "main.yaml", "content": A, "unless_latest": True}
        for round_ in range(15):
            version, now = f"v{round_}", time.time()
            ids = await asyncio.gather(
                *(t.publish(version=version, now=now, reason="start", **kw) for t in tables)
            )
            assert len([i for i in ids if i is not None]) == 1, (version, ids)
        rows = await tables[0].history("main")
        assert [r.version for r in rows] == [f"v{n}" for n in reversed(range(15))]
    finally:
        for s in stores:
            await s.close()


async def test_a_version_is_found_by_hash_id_or_a_unique_start(db: Db) -> None:
    store = await db.open()
    try:
        table = FlowVersionStore(store)
        kw = {"flow": "main", "file": "main.yaml", "now": time.time()}
        one = await table.publish(version="release-1+abcd00001111", content=A, **kw)
        two = await table.publish(version="abce00002222", content=B, **kw)
        three = await table.publish(version="release-1+abcd00001111", content=A, **kw)
        await table.publish(flow="other", version="ffff", content="", file="o", now=0.0)

        async def found(ref: str) -> int | None:
            row = await table.find("main", ref)
            return None if row is None else row.id

        assert await found("release-1+abcd00001111") == three  # the newest row of a version
        assert await found(str(one)) == one
        assert await found("abcd") == three  # the hash after the label
        assert await found("release-1") == three
        assert await found("abc") is None  # fits two versions
        assert await found("ffff") is None  # another flow's
        assert await found("") is None
        row = await table.find("main", "abce")
        assert row is not None and row.id == two and row.content == B
    finally:
        await store.close()
