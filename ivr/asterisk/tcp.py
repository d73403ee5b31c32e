"""The TCP shell both Asterisk servers (FastAGI, AudioSocket) run in: listen, accept, cap,
track, close.

A server hands :class:`TcpService` one coroutine per connection; the shell counts it, logs
the errors that only ever cost that connection (garbage from the peer, a dropped socket),
always closes the socket, and on :meth:`TcpService.close` stops accepting, lets connections
finish for a grace period and cancels the rest. What a connection means is the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Final, TypeAlias

from ivr.errors import ProtocolError

# Where a connection's errors go: the server's logger, or an adapter adding the call's id.
Log: TypeAlias = "logging.Logger | logging.LoggerAdapter[logging.Logger]"

__all__ = ["BACKLOG", "IO_ERRORS", "Connection", "TcpService", "set_keepalive"]

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


class Connection:
    """One accepted connection as a server's handler sees it. ``log`` is where the shell
    reports the connection's errors; a handler may swap in a per-call logger."""

    __slots__ = ("log", "peer", "reader", "writer")

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: Log
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.peer: object = writer.get_extra_info("peername")
        self.log: Log = log


Serve = Callable[[Connection], Awaitable[None]]
TurnAway = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
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
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle
    async def start(self, owner: str) -> None:
        """Start listening (returns once the socket is bound); ``owner`` names the server in
        the error for a second start."""
        if self._server is not None:
            raise RuntimeError(f"{owner} already started")
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self._port, backlog=BACKLOG
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
    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.max_connections is not None and len(self._tasks) >= self.max_connections:
            assert self._turn_away is not None
            await self._turn_away(reader, writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Connection(reader, writer, self._log)
        try:
            if self._keepalive:
                set_keepalive(writer.get_extra_info("socket"))
            await self._serve(conn)
        except ProtocolError as exc:
            conn.log.warning("closing %s from %s: %s", self.what, conn.peer, exc)
        except IO_ERRORS as exc:
            conn.log.info("%s from %s lost: %r", self.what, conn.peer, exc)
        finally:
            writer.close()
            with contextlib.suppress(*IO_ERRORS):
                await writer.wait_closed()
            self._tasks.discard(task)
