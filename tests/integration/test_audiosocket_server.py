"""The AudioSocket server over real TCP, with a fake Asterisk AudioSocket client."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from support.fake_audiosocket import FakeAudioSocket

from ivr.asterisk.audiosocket.protocol import (
    NEED_DATA,
    Audio,
    AudioSocketConnection,
    ConnectionClosed,
    Dtmf,
    Hangup,
    Uuid,
    encode_frame,
)
from ivr.asterisk.audiosocket.server import AudioSession, AudioSocketServer, IncomingFrame
from ivr.errors import AudioSocketError, ProtocolError

PCM = bytes(range(256)) + bytes(64)


@pytest.fixture
async def server() -> AsyncIterator[AudioSocketServer]:
    async with AudioSocketServer(port=0, uuid_timeout_s=0.5) as srv:
        yield srv


async def collect(session: AudioSession, n: int) -> list[IncomingFrame]:
    out: list[IncomingFrame] = []
    async for frame in session.frames():
        out.append(frame)
        if len(out) == n:
            break
    return out


async def test_session_matched_by_uuid_frames_both_ways_and_close(
    server: AudioSocketServer,
) -> None:
    key = uuid.uuid4()
    fut = server.expect(str(key))  # a string uuid, as the AGI side has it
    caller = await FakeAudioSocket.connect("127.0.0.1", server.port, key)
    session = await asyncio.wait_for(fut, 2)
    assert session.uuid == key and server.active_sessions == 1
    await caller.send_raw(encode_frame(Audio(PCM)) + encode_frame(Dtmf("4")))
    await caller.send_hangup()
    assert await asyncio.wait_for(collect(session, 10), 2) == [Audio(PCM), Dtmf("4"), Hangup()]
    await session.send_audio(PCM)
    await session.close()
    await caller.wait_closed_by_server()
    assert caller.audio_frames()[0][1] == PCM
    assert not caller.got_hangup  # it hung up itself: no hangup frame back
    await asyncio.sleep(0.05)
    assert server.active_sessions == 0
    await caller.close()


async def test_close_sends_a_hangup_frame_so_audiosocket_returns(
    server: AudioSocketServer,
) -> None:
    key = uuid.uuid4()
    fut = server.expect(key)
    caller = await FakeAudioSocket.connect("127.0.0.1", server.port, key)
    session = await asyncio.wait_for(fut, 2)
    await session.close()
    await session.close()  # idempotent
    await caller.wait_closed_by_server()
    assert caller.got_hangup
    await caller.close()


async def test_hangup_frame_survives_a_caller_still_sending_audio(
    server: AudioSocketServer,
) -> None:
    # Asterisk streams the caller's audio until it reads our hangup frame. Closing with that
    # audio unread makes the kernel send a reset, which can destroy the hangup frame (CI saw
    # "Connection reset by peer" instead of it). Here the caller floods audio, so unread
    # data is certain at close time; the frame must still arrive, then a clean EOF.
    key = uuid.uuid4()
    fut = server.expect(key)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_frame(Uuid(key)))
    session = await asyncio.wait_for(fut, 2)
    got: list[object] = []

    async def flood() -> None:
        frames = encode_frame(Audio(bytes(320))) * 50
        while not writer.is_closing():
            writer.write(frames)
            await writer.drain()

    async def hear() -> None:
        conn = AudioSocketConnection(role="client")
        while not got or not isinstance(got[-1], ConnectionClosed):
            event = conn.next_event()
            if event is NEED_DATA:
                conn.receive_data(await reader.read(65536))  # a reset raises here
                continue
            got.append(event)
            if isinstance(event, Hangup):  # what Asterisk does: AudioSocket() returns
                writer.close()

    flooding = asyncio.create_task(flood())
    hearing = asyncio.create_task(hear())
    await asyncio.sleep(0.3)  # the server's buffers fill up: nobody reads the session
    await asyncio.wait_for(session.close(), 5)
    await asyncio.wait_for(asyncio.gather(hearing, flooding), 5)
    assert got == [Hangup(), ConnectionClosed()]


async def test_uuid_nobody_expects_is_logged_and_closed(
    server: AudioSocketServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ivr.asterisk.audiosocket")
    stranger = uuid.uuid4()
    caller = await FakeAudioSocket.connect("127.0.0.1", server.port, stranger)
    await caller.wait_closed_by_server()
    assert f"uuid {stranger} that nobody expects" in caplog.text
    assert server.active_sessions == 0
    await caller.close()


async def test_second_connection_for_the_same_uuid_is_refused(
    server: AudioSocketServer, caplog: pytest.LogCaptureFixture
) -> None:
    key = uuid.uuid4()
    fut = server.expect(key)
    first = await FakeAudioSocket.connect("127.0.0.1", server.port, key)
    session = await asyncio.wait_for(fut, 2)
    second = await FakeAudioSocket.connect("127.0.0.1", server.port, key)
    await second.wait_closed_by_server()
    assert "refusing a second AudioSocket connection" in caplog.text
    assert not session.closed and not first.closed_by_server.is_set()
    with pytest.raises(ValueError, match="already expected or in use"):
        server.expect(key)
    await session.close()
    await first.close()
    await second.close()


async def test_expect_times_out_with_a_clear_error(server: AudioSocketServer) -> None:
    key = uuid.uuid4()
    fut = server.expect(key, timeout_s=0.1)
    with pytest.raises(AudioSocketError, match=f"no AudioSocket connection for {key} within 0.1 s"):
        await fut
    # A late connection is then a stranger.
    caller = await FakeAudioSocket.connect("127.0.0.1", server.port, key)
    await caller.wait_closed_by_server()
    await caller.close()


async def test_cancelled_expect_withdraws_the_registration(server: AudioSocketServer) -> None:
    key = uuid.uuid4()
    server.expect(key).cancel()
    await asyncio.sleep(0)
    caller = await FakeAudioSocket.connect("127.0.0.1", server.port, key)
    await caller.wait_closed_by_server()
    server.expect(key).cancel()  # registrable again
    await caller.close()


async def test_duplicate_expect_is_refused(server: AudioSocketServer) -> None:
    key = uuid.uuid4()
    fut = server.expect(key)
    with pytest.raises(ValueError, match="already expected"):
        server.expect(key)
    fut.cancel()


async def test_garbage_closes_only_that_connection(server: AudioSocketServer) -> None:
    bad_key, good_key = uuid.uuid4(), uuid.uuid4()
    bad_fut, good_fut = server.expect(bad_key), server.expect(good_key)
    bad = await FakeAudioSocket.connect("127.0.0.1", server.port, bad_key)
    good = await FakeAudioSocket.connect("127.0.0.1", server.port, good_key)
    bad_session, good_session = await asyncio.gather(bad_fut, good_fut)
    await bad.send_raw(b"\x42garbage")
    with pytest.raises(ProtocolError, match="unknown AudioSocket frame kind 0x42"):
        await asyncio.wait_for(collect(bad_session, 1), 2)
    await bad.wait_closed_by_server()
    assert bad_session.closed
    await good.send_raw(encode_frame(Dtmf("1")))
    assert await asyncio.wait_for(collect(good_session, 1), 2) == [Dtmf("1")]
    await good_session.close()
    for c in (bad, good):
        await c.close()


async def test_garbage_or_silence_before_the_uuid_is_closed(
    server: AudioSocketServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "ivr.asterisk.audiosocket")
    junk = await FakeAudioSocket.connect("127.0.0.1", server.port, None, send_uuid=False)
    await junk.send_raw(b"\x10\x01\x40" + PCM)  # audio before the uuid
    mute = await FakeAudioSocket.connect("127.0.0.1", server.port, None, send_uuid=False)
    await junk.wait_closed_by_server()
    await mute.wait_closed_by_server(timeout_s=2)  # uuid_timeout_s=0.5
    assert "first AudioSocket frame must be the uuid" in caplog.text
    assert "sent no AudioSocket uuid within 0.5 s" in caplog.text
    for c in (junk, mute):
        await c.close()


async def test_peer_eof_ends_frames_and_send_raises_callhangup(server: AudioSocketServer) -> None:
    from ivr.errors import CallHangup

    key = uuid.uuid4()
    fut = server.expect(key)
    caller = await FakeAudioSocket.connect("127.0.0.1", server.port, key)
    session = await asyncio.wait_for(fut, 2)
    await caller.close()
    assert await asyncio.wait_for(collect(session, 5), 2) == []
    with pytest.raises(CallHangup):
        await session.send_audio(PCM)
    await session.close()


async def test_server_close_fails_pending_and_closes_sessions() -> None:
    srv = AudioSocketServer(port=0)
    await srv.start()
    key = uuid.uuid4()
    live_fut, pending = srv.expect(key), srv.expect(uuid.uuid4())
    caller = await FakeAudioSocket.connect("127.0.0.1", srv.port, key)
    await asyncio.wait_for(live_fut, 2)
    await srv.close(grace_s=0.1)
    with pytest.raises(AudioSocketError, match="shutting down"):
        await pending
    await caller.wait_closed_by_server()
    assert caller.got_hangup
    await caller.close()
