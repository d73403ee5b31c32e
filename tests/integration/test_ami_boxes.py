"""Several Asterisk boxes (ivr.asterisk.ami.boxes) against fake managers over TCP: each box is
checked to be the systemname the configuration gives it, a call's box comes from its uniqueid,
originates go to the box of the call they follow (else in turn), and a channel is gone only
when every box says so."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.fake_ami import SECRET, FakeManager

from ivr.asterisk.ami.boxes import AmiBoxes
from ivr.config import AmiSettings, Secret, load_settings
from ivr.errors import AmiError, ConfigError


@pytest.fixture
async def two() -> AsyncIterator[tuple[FakeManager, FakeManager]]:
    a, b = FakeManager(system_name="pbx1"), FakeManager(system_name="pbx2")
    yield a, b
    await a.close()
    await b.close()


async def boxes_for(a: FakeManager, b: FakeManager) -> AmiBoxes:
    pa, pb = await a.start(), await b.start()
    settings = AmiSettings(
        boxes=(f"pbx1@127.0.0.1:{pa}", f"pbx2@127.0.0.1:{pb}"),
        secret=Secret(SECRET.encode()),
        action_timeout_s=1.0,
        reconnect_max_s=2.0,
    )
    boxes = AmiBoxes(settings)
    await boxes.start()
    return boxes


def originates(fake: FakeManager) -> int:
    return fake.actions.count("Originate")


async def test_calls_and_originates_go_to_their_box(two: tuple[FakeManager, FakeManager]) -> None:
    a, b = two
    boxes = await boxes_for(a, b)
    try:
        health = await boxes.health()
        assert (health.status, health.detail) == ("up", "2 box(es), 0 reconnect(s)")
        assert boxes.box_of("pbx2-1733560000.42") == "pbx2"
        assert boxes.box_of("1733560000.42") == ""  # no box of ours
        assert boxes.queues_for("pbx2-1733560000.42") is boxes.queues["pbx2"]
        assert boxes.queues_for("elsewhere-1.2") is None

        await boxes.originate("PJSIP/100@trunk", follows="pbx2-1.1", context="c", exten="s")
        assert (originates(a), originates(b)) == (0, 1)
        for _ in range(4):  # campaign calls (they follow no call): in turn
            await boxes.originate("PJSIP/100@trunk", context="c", exten="s")
        assert (originates(a), originates(b)) == (2, 3)
    finally:
        await boxes.close()


async def test_a_box_with_the_wrong_systemname_is_not_used(
    two: tuple[FakeManager, FakeManager],
) -> None:
    a, b = two
    b.system_name = ""  # not set in its asterisk.conf: its uniqueids could repeat a's
    boxes = await boxes_for(a, b)
    try:
        health = await boxes.health()
        assert health.status == "up"
        assert "pbx2: its systemname is '', not 'pbx2'" in health.detail
        assert "set systemname = pbx2" in health.detail
        await boxes.originate("PJSIP/100@trunk", follows="pbx2-1.1", context="c", exten="s")
        assert (originates(a), originates(b)) == (1, 0)  # from the box that can
    finally:
        await boxes.close()


async def test_a_channel_is_gone_only_when_every_box_says_so(
    two: tuple[FakeManager, FakeManager],
) -> None:
    a, b = two
    boxes = await boxes_for(a, b)
    try:
        b.channels.add("ivr-job-7-1")
        assert await boxes.channel_exists("ivr-job-7-1") is True
        assert await boxes.channel_exists("ivr-job-8-1") is False
        b.silent_on = "Getvar"  # b cannot tell: a's "no such channel" is not enough
        with pytest.raises(AmiError, match="cannot tell whether ivr-job-8-1 exists"):
            await boxes.channel_exists("ivr-job-8-1")
    finally:
        await boxes.close()


async def test_no_box_up_is_a_clear_error_and_health_down() -> None:
    settings = AmiSettings(boxes=("pbx1@127.0.0.1:1",), secret=Secret(b"x"), action_timeout_s=0.5)
    boxes = AmiBoxes(settings)
    await boxes.start(wait_s=0.2)
    try:
        assert (await boxes.health()).status == "down"
        with pytest.raises(AmiError, match="no Asterisk box is up"):
            await boxes.originate("PJSIP/1@trunk", context="c", exten="s")
    finally:
        await boxes.close()


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        ("pbx1", "is not name@host"),
        ("pbx 1@10.0.0.1", "is not name@host"),
        ("pbx1@10.0.0.1:99999", "port must be a number"),
        ("pbx1@10.0.0.1,pbx1@10.0.0.2", "the same name"),
        ("pbx1@10.0.0.1,pbx2@10.0.0.1:5038", "the same address"),
    ],
)
def test_box_lists_are_checked_when_loaded(boxes: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env={"IVR_AMI_BOXES": boxes})


def test_a_box_list_from_the_environment() -> None:
    settings = load_settings(env={"IVR_AMI_BOXES": "pbx1@10.0.0.1, pbx2@[::1]:6038"})
    assert [(b.name, b.host, b.port) for b in settings.ami.box_list()] == [
        ("pbx1", "10.0.0.1", 5038),
        ("pbx2", "::1", 6038),
    ]
