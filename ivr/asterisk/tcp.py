"""The TCP shell both Asterisk servers (FastAGI, AudioSocket) run in: listen, accept, cap,
track, close.

A server hands :class:`TcpService` one coroutine per connection; the shell counts it, logs
the errors that only ever cost that connection (garbage from the peer, a dropped socket),
always closes the socket, and on :meth:`TcpService.close` stops accepting, lets connections
finish for a grace period and cancels the rest. What a connection means is the server's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Final, TypeAlias

from ivr.errors import ProtocolError

# Where a connection's errors go: the server's logger, or an adapter adding the call's id.
Log: TypeAlias = "logging.Logger | logging.LoggerAdapter[logging.Logger]"

__all__ = ["BACKLOG", "IO_ERRORS", "Connection", "Link", "TcpService", "set_keepalive"]

# What a dropped or reset TCP connection raises (ConnectionResetError, BrokenPipeError,
# TimeoutError ... are OSError subclasses). Caught around socket I/O only, never around a
# call's handler.
IO_ERRORS: Final[tuple[type[Exception], ...]] = (ConnectionError, OSError)
# Accept queue length. asyncio's default (100) overflows when many calls arrive at once (a
# burst after a restart, a load test): the kernel drops the extra SYNs and those callers wait
# 1-3 s for a retransmit before AGI() even starts. The kernel caps it at net.core.somaxconn.
BACKLOG: Final = 1024

# TCP keepalive: Queue()/Dial() have no deadline, so a half-open connection (the Asterisk box
# died, a firewall dropped the flow) is noticed by the kernel: first probe after 60 s idle,
# then every 10 s, given up after 6 misses (~2 minutes).
_KEEPALIVE_IDLE_S = 60
_KEEPALIVE_INTERVAL_S = 10
_KEEPALIVE_COUNT = 6
# Bytes a peer may push while the server is not waiting for any before reading pauses
# (asyncio streams pause at twice their 64 KiB limit).
_PAUSE_BYTES = 128 * 1024


def set_keepalive(sock: socket.socket) -> None:
    """Turn on TCP keepalive with the timings above (where the platform has the options)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", _KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", _KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", _KEEPALIVE_COUNT),
    ):
        option = getattr(socket, name, None)  # Linux has all three; macOS names them apart
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


class Link(asyncio.Protocol):
    """One accepted TCP connection, without streams: what arrives goes straight to the
    server's sans-IO core, what the core encodes goes straight to the socket.

    The reader side is push-then-wait: :meth:`attach` names the function that takes the bytes
    (``receive_data`` of the protocol object; ``b""`` at EOF or when the connection is lost),
    and :meth:`readable` waits until something arrived since the last wait. Bytes that come
    before :meth:`attach` are kept and handed over by it. Reading pauses once
    :data:`_PAUSE_BYTES` arrived while nobody waits (a flooding peer), as a stream would.
    """

    def __init__(self, on_open: Callable[[Link], None]) -> None:
        self._on_open = on_open
        self.transport: asyncio.Transport | None = None
        self.peer: object = None
        self._receive: Callable[[bytes], None] | None = None
        self._early: list[bytes] = []  # bytes before attach()
        self._waiter: asyncio.Future[None] | None = None
        self._unwaited = 0  # bytes pushed since the last readable()
        self._reading_paused = False
        self._eof = False
        self._lost: Exception | None = None
        self._closed: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # from connection_made on
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        self._loop = loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        self._on_open(self)

    def data_received(self, data: bytes) -> None:
        if self._receive is None:
            self._early.append(data)
        else:
            self._receive(data)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
            return
        self._unwaited += len(data)
        if self._unwaited > _PAUSE_BYTES and not self._reading_paused:
            assert self.transport is not None
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._end()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc
        self._end()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def _end(self) -> None:
        if self._eof:
            return
        self._eof = True
        self.data_received(b"")

    # -- reading
    def attach(self, receive: Callable[[bytes], None]) -> None:
        """Send every byte from now on (and those that came already) to ``receive``."""
        self._receive = receive
        early, self._early = self._early, []
        for data in early:
            receive(data)

    def readable(self) -> asyncio.Future[None]:
        """``await link.readable()``: until bytes (or the end) arrived after this call.

        A future, not a coroutine: it is awaited for every read of every connection."""
        if self._reading_paused:
            assert self.transport is not None
            self._reading_paused = False
            self.transport.resume_reading()
        self._unwaited = 0
        loop = self._loop
        assert loop is not None  # connection_made() comes first
        waiter = loop.create_future()
        if self._eof:
            waiter.set_result(None)
        else:
            self._waiter = waiter  # data_received() clears it and sets it done
        return waiter

    @property
    def at_eof(self) -> bool:
        """The peer closed (or the connection was lost)."""
        return self._eof

    # -- writing
    def write(self, data: bytes) -> None:
        """Queue ``data`` on the socket (:meth:`drain` waits while too much is queued)."""
        assert self.transport is not None
        if self._lost is not None or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        self.transport.write(data)

    @property
    def write_blocked(self) -> bool:
        """:meth:`drain` would wait (or raise): the send buffer is full, or the connection
        is lost. Cheaper to ask than to await a :meth:`drain` that returns at once."""
        return self._write_paused or self._lost is not None

    async def drain(self) -> None:
        """Wait while the socket's send buffer is over its high-water mark."""
        if self._lost is not None:
            raise ConnectionResetError("the connection is lost")
        if not self._write_paused:
            return
        waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        await waiter
        if self._lost is not None:
            raise ConnectionResetError("the connection is lost")

    def write_eof(self) -> None:
        """Half-close: no more bytes from us (if the transport can)."""
        assert self.transport is not None
        if self.transport.can_write_eof() and not self.transport.is_closing():
            self.transport.write_eof()

    def close(self) -> None:
        """Close the socket (buffered bytes are still sent); idempotent."""
        if self.transport is not None:
            self.transport.close()

    async def wait_closed(self) -> None:
        """Wait until the socket is closed."""
        if self._closed is not None:
            await asyncio.shield(self._closed)


class Connection:
    """One accepted connection as a server's handler sees it. ``log`` is where the shell
    reports the connection's errors; a handler may swap in a per-call logger."""

    __slots__ = ("link", "log", "peer")

    def __init__(self, link: Link, log: Log) -> None:
        self.link = link
        self.peer: object = link.peer
        self.log: Log = log


Serve = Callable[[Connection], Awaitable[None]]
TurnAway = Callable[[Link], Awaitable[None]]
Overrun = Callable[["set[asyncio.Task[None]]"], Awaitable[None]]


class TcpService:
    """Listen on ``host:port`` (``0``: a free port, see :attr:`port`) and run ``serve`` for
    each connection.

    ``name`` labels the listening log line and ``what`` the per-connection ones (``closing
    <what> from <peer>: ...``, ``<what> from <peer> lost: ...``). Beyond ``max_connections``
    at once (``None``: no cap) a new connection goes to ``turn_away`` instead, untracked.
    ``keepalive`` turns on TCP keepalive on every tracked connection.
    """

    def __init__(
        self,
        serve: Serve,
        *,
        host: str,
        port: int,
        name: str,
        what: str,
        log: logging.Logger,
        max_connections: int | None = None,
        turn_away: TurnAway | None = None,
        keepalive: bool = False,
    ) -> None:
        if max_connections is not None and turn_away is None:
            raise ValueError("a connection cap needs a turn_away")
        self._serve = serve
        self.host = host
        self._port = port
        self.name = name
        self.what = what
        self._log = log
        self.max_connections = max_connections
        self._turn_away = turn_away
        self._keepalive = keepalive
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # connections being served
        self._all: set[asyncio.Task[None]] = set()  # ... and those being turned away

    # -- lifecycle
    async def start(self, owner: str) -> None:
        """Start listening (returns once the socket is bound); ``owner`` names the server in
        the error for a second start."""
        if self._server is not None:
            raise RuntimeError(f"{owner} already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Link(self._open), self.host, self._port, backlog=BACKLOG
        )
        self._log.info("%s listening on %s:%d", self.name, self.host, self.port)

    async def serve_forever(self, owner: str) -> None:
        """Start if needed and serve until cancelled."""
        if self._server is None:
            await self.start(owner)
        assert self._server is not None
        await self._server.serve_forever()

    @property
    def listening(self) -> bool:
        """Started and not closed yet."""
        return self._server is not None

    def stop_accepting(self) -> None:
        """Close the listening socket now (:meth:`close` does it too); idempotent."""
        if self._server is not None:
            self._server.close()

    async def close(self, grace_s: float, overrun: Overrun | None = None) -> None:
        """Stop accepting; let connections finish for up to ``grace_s``, then await
        ``overrun(pending)`` (log it, close them politely) and cancel what still runs."""
        if self._server is None:
            return
        self._server.close()
        tasks = set(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            if pending:
                if overrun is not None:
                    await overrun(pending)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    # -- introspection
    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (empty before :meth:`start`)."""
        if self._server is None:
            return ()
        return tuple(self._server.sockets)

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        for sock in self.sockets:
            return int(sock.getsockname()[1])
        return self._port

    @property
    def active(self) -> int:
        """Connections being served right now (turned-away ones not counted)."""
        return len(self._tasks)

    # -- one connection
    def _open(self, link: Link) -> None:
        task = asyncio.get_running_loop().create_task(self._on_connection(link))
        self._all.add(task)  # a strong reference until it is done
        task.add_done_callback(self._all.discard)

    async def _on_connection(self, link: Link) -> None:
        if self.max_connections is not None and len(self._tasks) >= self.max_connections:
            assert self._turn_away is not None
            try:
                await self._turn_away(link)
            finally:
                link.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Connection(link, self._log)
        try:
            if self._keepalive:
                assert link.transport is not None
                set_keepalive(link.transport.get_extra_info("socket"))
            await self._serve(conn)
        except ProtocolError as exc:
            conn.log.warning("closing %s from %s: %s", self.what, conn.peer, exc)
        except IO_ERRORS as exc:
            conn.log.info("%s from %s lost: %r", self.what, conn.peer, exc)
        finally:
            link.close()
            self._tasks.discard(task)
