"""A server that stops never hangs up on its callers (real Asterisk, SIPp, ``ivr serve``).

The dialplan sends every call the server did not mark ``IVR_RESULT=done`` to its fallback (an
apology, then queue ``default``, whose simulated agents answer and hang up), so a SIGKILL
mid-menu costs the caller a transfer; SIGTERM lets calls finish for ``agi.shutdown_grace_s``
and hands the rest to the dialplan; a call arriving while the server stops falls back too.
Each test runs its own server on port 4573 (this module does not use conftest's).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Records, dial, spec, wait_until_idle
from serve import ROOT, IvrServe

from ivr.lab import Lab
from ivr.store.queries import RECOVERED_ERROR

pytestmark = [pytest.mark.asterisk]

STOPPED_ERROR = "server stopping: handed back to the dialplan"


@pytest.fixture
def server_factory(lab: Lab, tmp_path: Path) -> Iterator[list[IvrServe]]:
    servers: list[IvrServe] = []
    yield servers
    for server in servers:
        server.stop()


def start(servers: list[IvrServe], workdir: Path, **agi: object) -> IvrServe:
    server = IvrServe(workdir, http_base_url="", name="ivr-serve-stop", agi=agi)
    server.start()
    servers.append(server)
    return server


async def fell_back(lab: Lab, messages: int, queue_log: int, flow: str) -> str:
    """The dialplan's fallback ran for a call: its warning, the queue and an agent."""
    warning = await asyncio.to_thread(
        lab.wait_for_log,
        f"IVR flow {flow} at 127.0.0.1:4573 did not finish",
        since=messages,
        timeout_s=20,
    )
    enter = await asyncio.to_thread(
        lab.wait_for_log, "|ENTERQUEUE|", name="queue_log", since=queue_log, timeout_s=20
    )
    assert "|default|" in enter
    await asyncio.to_thread(
        lab.wait_for_log, "|CONNECT|", name="queue_log", since=queue_log, timeout_s=20
    )
    return warning


async def test_a_server_killed_mid_menu_sends_the_caller_to_the_fallback(
    lab: Lab, server_factory: list[IvrServe], tmp_path: Path
) -> None:
    server = start(server_factory, tmp_path / "a")
    messages, queue_log = lab.log_size("messages.log"), lab.log_size("queue_log")
    call = asyncio.create_task(dial(lab, spec("100", hold_s=60)))  # silent caller in the menu
    await asyncio.to_thread(server.wait_for_log, "-> STREAM FILE", timeout_s=15)
    await asyncio.sleep(1.5)
    server.kill()
    warning = await fell_back(lab, messages, queue_log, "main")
    # a dead server set nothing: the dialplan sent the call back to resume it, found nobody
    # listening (FAILURE), and took the fallback
    log = lab.log_path().read_bytes()[messages:].decode(errors="replace")
    assert "IVR flow main cut off mid-call, resuming it (try 1 of 2)" in log
    assert re.search(r"AGISTATUS=FAILURE IVR_RESULT=(?![a-z_])", warning), warning
    result = await call
    assert result.ok, result  # the agent hung up: the caller was never dropped
    channels, _ = await wait_until_idle(lab, timeout_s=15)
    assert channels.startswith("0 active channels")
    # the restarted server keeps the one record of that call, marked as cut off
    server = start(server_factory, tmp_path / "a")
    [record] = await Records(server).all()
    assert (record.outcome, record.error) == ("error", RECOVERED_ERROR)


async def test_sigterm_lets_calls_finish_then_hands_the_rest_back(
    lab: Lab, server_factory: list[IvrServe], tmp_path: Path
) -> None:
    server = start(server_factory, tmp_path / "b", shutdown_grace_s=10)
    messages, queue_log = lab.log_size("messages.log"), lab.log_size("queue_log")
    # A presses 2 in the menu and is done within the grace; B stays silent in the menu
    quick = asyncio.create_task(dial(lab, spec("100", "2")))
    silent = asyncio.create_task(dial(lab, spec("100", hold_s=60)))
    await asyncio.to_thread(server.wait_for_log, "-> STREAM FILE", timeout_s=15)
    await asyncio.sleep(1.0)
    stopping = threading.Thread(target=server.stop, kwargs={"timeout_s": 40})
    stopping.start()
    await asyncio.sleep(0.5)
    late = asyncio.create_task(dial(lab, spec("200", hold_s=60)))  # while the server stops
    results = await asyncio.gather(quick, silent, late)
    assert all(r.ok for r in results), results
    await asyncio.to_thread(stopping.join, 40)
    warnings = [await fell_back(lab, messages, queue_log, "bank")]
    assert "AGISTATUS=FAILURE" in warnings[0]  # nobody listened: the late caller fell back
    warnings.append(await fell_back(lab, messages, queue_log, "main"))
    outcomes = sorted((r.outcome, r.error or "") for r in await Records(server).all())
    assert outcomes == [("error", STOPPED_ERROR), ("self_service", "")]
    channels, _ = await wait_until_idle(lab, timeout_s=15)
    assert channels.startswith("0 active channels")


async def test_a_full_server_sends_the_extra_caller_to_the_fallback(
    lab: Lab, server_factory: list[IvrServe], tmp_path: Path
) -> None:
    server = start(server_factory, tmp_path / "c", max_connections=1)
    messages, queue_log = lab.log_size("messages.log"), lab.log_size("queue_log")
    first = asyncio.create_task(dial(lab, spec("100", "2")))
    await asyncio.to_thread(server.wait_for_log, "-> STREAM FILE", timeout_s=15)
    extra = await dial(lab, spec("200", hold_s=60))  # over the cap: turned away at once
    assert extra.ok, extra
    warning = await fell_back(lab, messages, queue_log, "bank")
    assert "IVR_RESULT=busy" in warning
    assert (await first).ok
    [record] = await Records(server).all()
    assert (record.flow, record.outcome) == ("main", "self_service")


async def test_a_mandarin_caller_cut_off_hears_the_apology_in_mandarin(
    lab: Lab, server_factory: list[IvrServe], tmp_path: Path
) -> None:
    """The server keeps CHANNEL(language) on the caller's choice, so when it dies the
    dialplan's fallback apologises from prompts/fallback/zh (rendered at start-up), not in
    English."""
    server = start(server_factory, tmp_path / "zh")
    assert (ROOT / "prompts" / "fallback" / "zh.wav").is_file()
    messages, queue_log = lab.log_size("messages.log"), lab.log_size("queue_log")
    log_from = server.log_size()
    call = asyncio.create_task(dial(lab, spec("200", "2", first_digit_after_s=3.0, hold_s=60)))
    await asyncio.to_thread(
        server.wait_for_log, "CHANNEL(language) zh", since=log_from, timeout_s=20
    )
    await asyncio.sleep(1.0)  # in the next menu, in Mandarin
    server.kill()
    await fell_back(lab, messages, queue_log, "bank")
    played = lab.log_path().read_bytes()[messages:].decode(errors="replace")
    assert "'ivr/fallback/zh." in played, played[-3000:]
    assert "im-sorry" not in played
    result = await call
    assert result.ok, result
