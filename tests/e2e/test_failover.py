"""Two ivr nodes behind ``hagi://`` on one PostgreSQL database, with the real Asterisk: calls
find the nodes through DNS SRV (dnsmasq), and a call whose node is killed mid-menu goes back
to the dialplan, lands on the other node and carries on there, in one record.

Node a (127.0.0.11) has the better SRV priority, so calls start there; node b (127.0.0.12)
takes what a drops.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from helpers import dial, spec, wait_until_idle
from serve import ARTIFACTS, IvrServe
from support.dns import Srv, resolver, srv_server
from support.postgres import PostgresServer

from ivr.call.record import CallRecord
from ivr.lab import Lab
from ivr.store.records import RecordStore

SERVICE = "ivr.test"
NODES = (("node-a", "127.0.0.11", 10), ("node-b", "127.0.0.12", 20))
RESUME_WITHIN_S = 3.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster(
    lab: Lab, postgres: PostgresServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[IvrServe, IvrServe, str]]:
    """Both nodes on one fresh database, the SRV records served, the dialplan on hagi://."""
    url = postgres.create_database(f"failover_{request.node.name[-20:].lower()}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    targets = [Srv(f"{name}.{SERVICE}", address, 4573, prio) for name, address, prio in NODES]
    nodes = [
        IvrServe(
            tmp_path / name,
            http_base_url="",
            host=address,
            name=f"ivr-{name}",
            settings={
                "store": {"url": url},
                "node_id": name,
                "speech": {"host": address, "advertise_host": address},  # its own AudioSocket
            },
            env={"IVR_STORE_PASSWORD": postgres.password},
        )
        for name, address, _ in NODES
    ]
    with (
        srv_server(SERVICE, targets, ARTIFACTS / f"dnsmasq-{stamp}.log"),
        resolver(lab.paths.root),
    ):
        lab.cli(f"dialplan set global IVR_AGI_DEFAULT_SERVICE {SERVICE}")
        try:
            for node in nodes:
                node.start()
            yield nodes[0], nodes[1], url
        finally:
            for node in nodes:
                node.stop()
            lab.cli("dialplan reload")  # the globals as extensions.conf has them: one node


@pytest.fixture
async def store(
    cluster: tuple[IvrServe, IvrServe, str], postgres: PostgresServer
) -> AsyncIterator[RecordStore]:
    s = await RecordStore.open(cluster[2], password=postgres.password)
    yield s
    await s.close()


async def wait_for_row(store: RecordStore, test: object, timeout_s: float, what: str) -> CallRecord:
    """The one call row once ``test(row)`` holds (polls the database every 50 ms)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await store.recent(limit=5)
        if len(rows) == 1 and test(rows[0]):  # type: ignore[operator]
            return rows[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s} s; rows: {rows}")
        await asyncio.sleep(0.05)


async def test_a_call_whose_node_is_killed_mid_menu_resumes_on_the_other_node(
    lab: Lab, cluster: tuple[IvrServe, IvrServe, str], store: RecordStore
) -> None:
    a, b, _ = cluster
    # the caller listens to the menu, and presses 1 (sales) once node b has taken over
    call = asyncio.create_task(dial(lab, spec("100", "1", first_digit_after_s=8, hold_s=30)))
    at_menu = await wait_for_row(
        store, lambda r: r.node == "node-a" and "menu" in r.path, 15, "node a checkpoints"
    )
    b_log = b.log_size()
    a.kill()
    killed = time.monotonic()
    moved = await wait_for_row(store, lambda r: r.node == "node-b", 10, "node b takes the call")
    resume_s = time.monotonic() - killed
    print(f"resumed on node b {resume_s:.2f} s after node a was killed")
    assert resume_s < RESUME_WITHIN_S
    assert moved.call_id == at_menu.call_id
    b.wait_for_log("resumed at menu (its node node-a stopped mid-call)", since=b_log)

    result = await call
    assert result.ok, result
    done = await wait_for_row(store, lambda r: r.outcome is not None, 10, "the record ends")
    assert (done.outcome, done.node, done.error) == ("self_service", "node-b", None)
    assert done.path == ["welcome", "menu", "menu", "sales", "goodbye"]
    assert [(i.kind, i.value) for i in done.inputs] == [("resumed", "node-a"), ("dtmf", "1")]
    assert done.ended_at is not None and done.started_at == at_menu.started_at
    channels, _ = await wait_until_idle(lab, timeout_s=10)
    assert channels.startswith("0 active channels")


async def test_a_call_cut_off_before_its_first_menu_reaches_the_fallback(
    lab: Lab, cluster: tuple[IvrServe, IvrServe, str], store: RecordStore
) -> None:
    a, b, _ = cluster
    messages = lab.log_size("messages.log")
    call = asyncio.create_task(dial(lab, spec("100", hold_s=40)))
    await wait_for_row(store, lambda r: r.node == "node-a", 15, "node a begins the record")
    a.kill()  # in the welcome: no menu reached, nothing to resume
    warning = await asyncio.to_thread(
        lab.wait_for_log, f"IVR flow main at {SERVICE} did not finish", since=messages
    )
    assert "AGISTATUS=SUCCESS IVR_RESULT=not_resumed" in warning
    done = await wait_for_row(store, lambda r: r.outcome is not None, 10, "the record ends")
    assert (done.outcome, done.node) == ("error", "node-b")
    assert "stopped before the first menu" in (done.error or "")
    result = await call
    assert result.ok, result  # the fallback's queue agent answered and hung up
    assert b.running
