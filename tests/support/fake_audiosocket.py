"""A fake Asterisk ``AudioSocket()`` application: the client side of one AudioSocket session.

It connects, sends the uuid frame, and (like Asterisk) keeps sending the caller's audio in
real-time 20 ms frames for as long as the session lives: a given PCM first, then silence.
Everything the server writes is recorded with the loop time it arrived. Keys, hangup frames
and raw garbage can be injected at any time.

    caller = await FakeAudioSocket.connect("127.0.0.1", port, uuid)
    caller.start_streaming(speech_pcm, lead_s=0.5)
    ...
    await caller.wait_closed_by_server()
    caller.audio_frames()  # [(t, pcm), ...]
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid as uuid_mod
from dataclasses import dataclass, field

from ivr.asterisk.audiosocket.protocol import (
    NEED_DATA,
    Audio,
    AudioSocketConnection,
    ConnectionClosed,
    Dtmf,
    Event,
    Hangup,
    Uuid,
    encode_frame,
)

FRAME_BYTES = 320
FRAME_S = 0.020


@dataclass
class Received:
    """One frame from the server and when it arrived (loop time)."""

    t: float
    event: Event


@dataclass
class FakeAudioSocket:
    """The Asterisk side of one AudioSocket connection (create with :meth:`connect`)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    uuid: uuid_mod.UUID
    connected_at: float
    received: list[Received] = field(default_factory=list)
    closed_by_server: asyncio.Event = field(default_factory=asyncio.Event)
    stream_started_at: float | None = None  # loop time of the first caller frame
    frames_sent: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _conn: AudioSocketConnection = field(
        default_factory=lambda: AudioSocketConnection(role="client", max_audio_bytes=65534)
    )

    @classmethod
    async def connect(
        cls, host: str, port: int, uuid: uuid_mod.UUID | None, *, send_uuid: bool = True
    ) -> FakeAudioSocket:
        """Connect and (unless ``send_uuid=False``) send the uuid frame; start recording."""
        reader, writer = await asyncio.open_connection(host, port)
        key = uuid or uuid_mod.uuid4()
        self = cls(reader, writer, key, asyncio.get_running_loop().time())
        if send_uuid:
            writer.write(encode_frame(Uuid(key)))
            await writer.drain()
        self._tasks.append(asyncio.create_task(self._read()))
        return self

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                event = self._conn.next_event()
                if event is NEED_DATA:
                    try:
                        data = await self.reader.read(65536)
                    except (ConnectionError, OSError):
                        data = b""
                    self._conn.receive_data(data)
                    continue
                self.received.append(Received(loop.time(), event))
                if isinstance(event, Hangup):  # AudioSocket() returns and closes its socket
                    self.writer.close()
                if isinstance(event, ConnectionClosed):
                    return
        finally:
            self.closed_by_server.set()

    # -- sending
    def start_streaming(
        self, pcm: bytes = b"", *, lead_s: float = 0.0, then_silence: bool = True
    ) -> None:
        """Send ``lead_s`` of silence, then ``pcm``, then silence, every 20 ms, until closed.

        ``then_silence=False`` stops sending after ``pcm``, as Asterisk does when the phone
        stops sending RTP (silence suppression, SIPp's ``rtp_stream`` at its end)."""
        audio = bytes(int(lead_s / FRAME_S) * FRAME_BYTES) + pcm
        self._tasks.append(asyncio.create_task(self._stream(audio, then_silence)))

    async def _stream(self, audio: bytes, then_silence: bool = True) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.stream_started_at = start
        i = 0
        with contextlib.suppress(ConnectionError, OSError):
            while not self.closed_by_server.is_set() and not self.writer.is_closing():
                if not then_silence and i * FRAME_BYTES >= len(audio):
                    return
                chunk = audio[i * FRAME_BYTES : (i + 1) * FRAME_BYTES].ljust(FRAME_BYTES, b"\0")
                self.writer.write(encode_frame(Audio(chunk)))
                await self.writer.drain()
                self.frames_sent += 1
                i += 1
                await asyncio.sleep(max(0.0, start + i * FRAME_S - loop.time()))

    def time_of_offset(self, byte_offset: int, lead_s: float = 0.0) -> float:
        """Loop time when the streamed audio reached ``byte_offset`` of the given ``pcm``."""
        assert self.stream_started_at is not None
        return self.stream_started_at + int(lead_s / FRAME_S) * FRAME_S + byte_offset / 16000

    async def send_dtmf(self, digit: str) -> None:
        await self.send_raw(encode_frame(Dtmf(digit)))

    async def send_hangup(self) -> None:
        await self.send_raw(encode_frame(Hangup()))

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        """Close our side (EOF for the server), stop streaming and reading."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

    async def wait_closed_by_server(self, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            await self.closed_by_server.wait()

    # -- what arrived
    def audio_frames(self) -> list[tuple[float, bytes]]:
        """Audio frames from the server: ``[(arrival time, pcm), ...]``."""
        return [(r.t, r.event.pcm) for r in self.received if isinstance(r.event, Audio)]

    @property
    def got_hangup(self) -> bool:
        """The server sent a hangup frame."""
        return any(isinstance(r.event, Hangup) for r in self.received)

    def prompt_frames(self, prompt: bytes) -> int:
        """How many leading audio frames equal the prompt's frames (padded to 320 bytes)."""
        frames = self.audio_frames()
        for n, (_, pcm) in enumerate(frames):
            want = prompt[n * FRAME_BYTES : (n + 1) * FRAME_BYTES]
            if not want or pcm != want.ljust(FRAME_BYTES, b"\0"):
                return n
        return len(frames)
