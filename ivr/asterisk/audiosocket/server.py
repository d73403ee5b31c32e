"""The AudioSocket server: a thin asyncio shell around
:class:`~ivr.asterisk.audiosocket.protocol.AudioSocketConnection`.

Speech menus run ``EXEC AudioSocket <uuid>,<host:port>`` over AGI. Before that, the AGI side
calls :meth:`AudioSocketServer.expect` with the same uuid; when Asterisk connects and sends
that uuid as its first frame, the future resolves to an :class:`AudioSession` (caller audio
and keys in, prompt audio out). A connection whose uuid nobody expects, a second connection
for a uuid already in use, a peer that sends no uuid in time and a peer that sends garbage
are logged and closed; they only ever cost their own connection. Sockets are always closed
in ``finally``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid as uuid_mod
from collections.abc import AsyncIterator
from types import TracebackType

from ivr.asterisk.audiosocket.protocol import (
    DEFAULT_MAX_AUDIO_BYTES,
    NEED_DATA,
    Audio,
    AudioSocketConnection,
    ConnectionClosed,
    Dtmf,
    ErrorFrame,
    Event,
    Hangup,
    Uuid,
)
from ivr.asterisk.tcp import IO_ERRORS, Connection, Link, TcpService
from ivr.errors import AudioSocketError, CallHangup, ProtocolError

__all__ = ["DEFAULT_PORT", "AudioSession", "AudioSocketServer", "IncomingFrame"]

logger = logging.getLogger("ivr.asterisk.audiosocket")

DEFAULT_PORT = 4574
IncomingFrame = Audio | Dtmf | Hangup | ErrorFrame


async def _read_event(link: Link, conn: AudioSocketConnection) -> Event:
    """The next frame or ConnectionClosed (the link pushes ``b""`` at EOF or on an I/O
    error, and the protocol object then yields ConnectionClosed)."""
    while (event := conn.next_event()) is NEED_DATA:
        await link.readable()
    return event


def _drop(data: bytes) -> None:
    """After our hangup frame, what the peer still sends is not read."""


class AudioSession:
    """One call's AudioSocket connection, handed out by :meth:`AudioSocketServer.expect`.

    Iterate :meth:`frames` from one task; :meth:`send_audio` from one task; :meth:`close`
    sends a hangup frame and closes the socket (idempotent).
    """

    def __init__(
        self,
        uuid: uuid_mod.UUID,
        link: Link,
        conn: AudioSocketConnection,
        *,
        write_timeout_s: float = 5.0,
        linger_s: float = 2.0,
    ) -> None:
        self.uuid = uuid
        self._link = link
        self._conn = conn
        self._write_timeout_s = write_timeout_s
        self._closed = asyncio.Event()  # close() has begun
        self._finished = asyncio.Event()  # ... and the socket is closed
        self._broken = False  # the stream failed: no hangup frame on close
        self._reading = False  # a task is waiting in frames(): close() must not read too
        self._linger_s = linger_s
        self.peer = link.peer

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (or the server closed the session)."""
        return self._closed.is_set()

    async def frames(self) -> AsyncIterator[IncomingFrame]:
        """Incoming frames until the peer hangs up (a :class:`Hangup` is the last one) or
        closes the socket (iteration just ends). Garbage closes the session and raises
        :class:`ProtocolError`."""
        while not self.closed:
            self._reading = True
            try:
                event = await _read_event(self._link, self._conn)
            except ProtocolError as exc:
                logger.warning("[%s] closing AudioSocket from %s: %s", self.uuid, self.peer, exc)
                self._broken = True
                await self.close()
                raise
            finally:
                self._reading = False
            if isinstance(event, ConnectionClosed):
                self._broken = True
                return
            if isinstance(event, Uuid):  # the protocol object refuses a second uuid
                raise AssertionError("uuid frame inside a session")
            yield event
            if isinstance(event, Hangup):
                return

    async def send_audio(self, pcm: bytes) -> None:
        """Write one audio frame (played to the caller); :class:`CallHangup` if the
        connection is gone or Asterisk stops reading for ``write_timeout_s``."""
        if self.closed or self._broken:
            raise CallHangup(f"AudioSocket session {self.uuid} is closed")
        try:
            async with asyncio.timeout(self._write_timeout_s):
                self._link.write(self._conn.send_audio(pcm))
                await self._link.drain()
        except TimeoutError:
            self._broken = True
            raise CallHangup(
                f"AudioSocket {self.uuid}: Asterisk read no audio for {self._write_timeout_s} s"
            ) from None
        except IO_ERRORS as exc:
            self._broken = True
            raise CallHangup(f"AudioSocket {self.uuid} connection lost: {exc!r}") from exc

    async def close(self) -> None:
        """Send the hangup frame (so ``AudioSocket()`` returns) and close the socket."""
        if self.closed:
            await self._finished.wait()
            return
        self._closed.set()
        try:
            if not self._broken and not self._conn.hangup_received:
                self._link.write(self._conn.send_hangup())
                await self._linger()
            self._link.close()
            await self._link.wait_closed()
        except IO_ERRORS as exc:
            logger.debug("[%s] AudioSocket close: %r", self.uuid, exc)
        finally:
            self._finished.set()

    async def _linger(self) -> None:
        """Half-close and read until Asterisk closes its end (it does on our hangup frame).

        Closing a socket with the caller's audio still unread makes the kernel send a reset,
        which can destroy the hangup frame before Asterisk reads it; ``AudioSocket()`` then
        fails instead of returning. Skipped while :meth:`frames` is reading (that task drains).
        """
        self._link.write_eof()
        if self._reading:
            return
        self._link.attach(_drop)
        try:
            async with asyncio.timeout(self._linger_s):
                while not self._link.at_eof:
                    await self._link.readable()
        except TimeoutError:
            logger.info(
                "[%s] AudioSocket peer still open %s s after the hangup frame",
                self.uuid,
                self._linger_s,
            )

    async def wait_closed(self) -> None:
        """Return once :meth:`close` has finished (hangup frame sent, socket closed)."""
        await self._finished.wait()


class AudioSocketServer:
    """Serve AudioSocket on ``host:port`` and hand each connection to whoever expects its uuid.

    ``port=0`` picks a free port (see :attr:`port`). ``uuid_timeout_s`` bounds the wait for
    the first frame; ``expect_timeout_s`` is the default bound for :meth:`expect`;
    ``max_audio_bytes`` bounds an incoming audio frame; ``write_timeout_s`` bounds each write.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        uuid_timeout_s: float = 5.0,
        expect_timeout_s: float = 10.0,
        max_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES,
        write_timeout_s: float = 5.0,
    ) -> None:
        self.uuid_timeout_s = uuid_timeout_s
        self.expect_timeout_s = expect_timeout_s
        self.max_audio_bytes = max_audio_bytes
        self.write_timeout_s = write_timeout_s
        self._tcp = TcpService(
            self._serve, host=host, port=port, name="AudioSocket", what="AudioSocket", log=logger
        )
        self._pending: dict[uuid_mod.UUID, asyncio.Future[AudioSession]] = {}
        self._active: dict[uuid_mod.UUID, AudioSession] = {}

    # -- lifecycle
    async def start(self) -> None:
        """Start listening (returns once the socket is bound)."""
        await self._tcp.start("AudioSocketServer")

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop accepting, fail pending :meth:`expect` futures, let sessions end for up to
        ``grace_s``, then close the rest."""
        if not self._tcp.listening:
            return
        self._tcp.stop_accepting()
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(AudioSocketError("the AudioSocket server is shutting down"))
        await self._tcp.close(grace_s, self._overrun)

    async def _overrun(self, pending: set[asyncio.Task[None]]) -> None:
        """Past the grace: hang up the sessions left, give them a second to end, then
        (the shell) cancel."""
        logger.warning("closing %d AudioSocket session(s) at shutdown", len(pending))
        for session in list(self._active.values()):
            await session.close()
        await asyncio.wait(pending, timeout=1.0)

    async def __aenter__(self) -> AudioSocketServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- introspection
    @property
    def host(self) -> str:
        return self._tcp.host

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (empty before :meth:`start`)."""
        return self._tcp.sockets

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        return self._tcp.port

    @property
    def address(self) -> str:
        """``host:port`` as ``AudioSocket(<uuid>,<host:port>)`` takes it."""
        return f"{self.host}:{self.port}"

    @property
    def active_sessions(self) -> int:
        """Sessions matched to a call and not closed yet."""
        return len(self._active)

    # -- matching calls
    def expect(
        self, uuid: uuid_mod.UUID | str, timeout_s: float | None = None
    ) -> asyncio.Future[AudioSession]:
        """Register ``uuid`` BEFORE running ``AudioSocket``; the future resolves to its session.

        It fails with :class:`AudioSocketError` when no connection arrives within
        ``timeout_s`` (default :attr:`expect_timeout_s`); cancelling it withdraws the
        registration. ``ValueError`` if the uuid is already expected or in use.
        """
        key = uuid if isinstance(uuid, uuid_mod.UUID) else uuid_mod.UUID(uuid)
        if key in self._pending or key in self._active:
            raise ValueError(f"AudioSocket uuid {key} is already expected or in use")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[AudioSession] = loop.create_future()
        bound = self.expect_timeout_s if timeout_s is None else timeout_s

        def expire() -> None:
            if not fut.done():
                fut.set_exception(AudioSocketError(
                    f"no AudioSocket connection for {key} within {bound} s: did the dialplan "
                    f"run AudioSocket({key},{self.address}) and can Asterisk reach it?"
                ))  # fmt: skip

        timer = loop.call_later(bound, expire)

        def forget(_: asyncio.Future[AudioSession]) -> None:
            timer.cancel()
            if self._pending.get(key) is fut:
                del self._pending[key]

        fut.add_done_callback(forget)
        self._pending[key] = fut
        return fut

    # -- one connection
    async def _serve(self, c: Connection) -> None:
        peer = c.peer
        session: AudioSession | None = None
        try:
            conn = AudioSocketConnection(max_audio_bytes=self.max_audio_bytes)
            try:
                async with asyncio.timeout(self.uuid_timeout_s):
                    c.link.attach(conn.receive_data)
                    first = await _read_event(c.link, conn)
            except TimeoutError:
                logger.warning("%s sent no AudioSocket uuid within %s s", peer, self.uuid_timeout_s)
                return
            if not isinstance(first, Uuid):  # ConnectionClosed: the protocol allows nothing else
                logger.info("%s closed the AudioSocket before sending its uuid", peer)
                return
            session = self._claim(first.uuid, c.link, conn, peer)
            if session is not None:
                await session.wait_closed()
        finally:
            if session is not None:
                await session.close()
                if self._active.get(session.uuid) is session:
                    del self._active[session.uuid]

    def _claim(
        self,
        key: uuid_mod.UUID,
        link: Link,
        conn: AudioSocketConnection,
        peer: object,
    ) -> AudioSession | None:
        """Hand the connection to whoever expects ``key``; ``None`` (refused) otherwise."""
        if key in self._active:
            logger.warning("[%s] refusing a second AudioSocket connection from %s", key, peer)
            return None
        fut = self._pending.pop(key, None)
        if fut is None or fut.done():
            logger.warning(
                "AudioSocket from %s for uuid %s that nobody expects; closing", peer, key
            )
            return None
        session = AudioSession(key, link, conn, write_timeout_s=self.write_timeout_s)
        self._active[key] = session
        fut.set_result(session)
        logger.info("[%s] AudioSocket connected from %s", key, peer)
        return session
