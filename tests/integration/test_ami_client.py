"""AmiClient against a small fake Asterisk Manager over TCP: login, actions, event lists,
reconnect with backoff after the link drops, and no action ever re-sent by a reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from support.fake_ami import SECRET, FakeManager

from ivr.asterisk.ami.client import AmiClient
from ivr.asterisk.ami.queues import AmiQueues
from ivr.config import AmiSettings, Secret
from ivr.errors import AmiError


@pytest.fixture
async def fake() -> AsyncIterator[FakeManager]:
    manager = FakeManager()
    yield manager
    await manager.close()


def settings(port: int, secret: str = SECRET, **kw: float) -> AmiSettings:
    return AmiSettings(
        port=port,
        secret=Secret(secret.encode()),
        **{"action_timeout_s": 1.0, "reconnect_max_s": 2.0, **kw},
    )  # type: ignore[arg-type]


async def test_login_queue_summary_and_originate(fake: FakeManager) -> None:
    client = AmiClient(settings(await fake.start()))
    await client.start()
    try:
        assert client.up and fake.logins == 1
        summary = await client.queue_summary("cards")
        assert (summary["LoggedIn"], summary["Available"], summary["TalkTime"]) == ("3", "1", "95")
        state = await AmiQueues(client).state("cards")
        assert state is not None
        assert (state.logged_in, state.callers, state.talktime_s) == (3, 2, 95)
        reply = await client.originate(
            "PJSIP/5550100@trunk",
            context="ivr-outbound",
            exten="s",
            variables={"IVR_JOB": "7"},
            channel_id="ivr-job-7-1",
        )
        assert reply["Event"] == "OriginateResponse" and reply["Response"] == "Success"
    finally:
        await client.close()


async def test_channel_exists_tells_gone_from_cannot_tell(fake: FakeManager) -> None:
    fake.channels = {"ivr-job-7-1"}
    client = AmiClient(settings(await fake.start()))
    await client.start()
    try:
        assert await client.channel_exists("ivr-job-7-1")
        assert not await client.channel_exists("ivr-job-8-1")
        fake.silent_on = "Getvar"  # no answer: it cannot tell, so it must not say "gone"
        with pytest.raises(AmiError, match="no answer"):
            await client.channel_exists("ivr-job-8-1")
    finally:
        await client.close()


async def test_wrong_secret_is_never_up(fake: FakeManager) -> None:
    client = AmiClient(settings(await fake.start(), secret="wrong"))
    await client.start(wait_s=0.5)
    try:
        assert not client.up and fake.logins == 0
        with pytest.raises(AmiError, match="not connected"):
            await client.action("Ping")
    finally:
        await client.close()


async def test_no_secret_is_a_clear_error() -> None:
    with pytest.raises(AmiError, match="IVR_AMI_SECRET"):
        await AmiClient(AmiSettings()).start()


async def test_a_dropped_link_reconnects_and_the_lost_originate_is_not_resent(
    fake: FakeManager,
) -> None:
    reconnected: list[int] = []
    client = AmiClient(settings(await fake.start()), on_reconnect=lambda: reconnected.append(1))
    await client.start()
    fake.drop_on = "Originate"
    try:
        with pytest.raises(AmiError):
            await client.originate(
                "PJSIP/5550100@trunk", context="ivr-outbound", exten="s", timeout_s=0.5
            )
        for _ in range(100):  # backoff starts at 1 s
            if client.up and fake.logins == 2:
                break
            await asyncio.sleep(0.05)
        assert client.up and fake.logins == 2 and reconnected == [1]
        await asyncio.sleep(0.5)  # panoramisk would re-send pending actions on FullyBooted
        assert fake.actions.count("Originate") == 1
        assert (await client.action("Ping"))[0]["Ping"] == "Pong"
    finally:
        await client.close()


async def test_unanswered_pings_drop_the_link_and_it_comes_back(fake: FakeManager) -> None:
    client = AmiClient(settings(await fake.start(), ping_s=0.2, action_timeout_s=0.3))
    await client.start()
    fake.silent_on = "Ping"
    try:
        for _ in range(100):
            if fake.logins >= 2:
                break
            await asyncio.sleep(0.05)
        assert fake.logins >= 2  # the dead link was noticed and replaced
    finally:
        fake.silent_on = ""
        await client.close()


async def test_queue_events_fill_the_callers_watch(fake: FakeManager) -> None:
    client = AmiClient(settings(await fake.start()))
    queues = AmiQueues(client)
    await client.start()
    try:
        watch = queues.watch("1700.42")
        other = queues.watch("1700.43")
        fake.send_event(
            "Event: AgentConnect\r\nUniqueid: 1700.42\r\nQueue: cards\r\n"
            "Interface: Local/1001@agents/n\r\nHoldTime: 17\r\nRingTime: 2\r\n\r\n"
            "Event: AgentComplete\r\nUniqueid: 1700.42\r\nTalkTime: 64\r\n"
            "Reason: agent\r\n\r\n"
            "Event: QueueCallerAbandon\r\nUniqueid: 1700.43\r\nHoldTime: 40\r\n\r\n"
        )
        for _ in range(50):
            if watch.talk_s and other.abandoned:
                break
            await asyncio.sleep(0.02)
        assert (watch.agent, watch.hold_s, watch.talk_s) == ("Local/1001@agents/n", 17.0, 64.0)
        assert other.abandoned and other.hold_s == 40.0 and other.agent == ""
        watch.close()
        assert "1700.42" not in queues._watches
    finally:
        await client.close()
