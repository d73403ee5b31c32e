"""The FastAGI server: a thin asyncio shell around
:class:`~ivr.asterisk.agi.protocol.AgiConnection`.

One task per connection: read the ``agi_*`` block (bounded in time and line length), build an
:class:`~ivr.asterisk.agi.channel.AgiChannel`, run the handler, then close the socket ourselves —
Asterisk keeps a FastAGI connection open after ``HANGUP`` until the server closes it, so a
server that waits for EOF keeps the channel up. A client that disconnects early or sends
garbage only ends its own connection, and a handler's exception is logged, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from types import TracebackType

from ivr.asterisk.agi.channel import AgiChannel, CallLogger, call_logger, command_name
from ivr.asterisk.agi.environment import AgiEnvironment
from ivr.asterisk.agi.limits import Rejections, turn_away
from ivr.asterisk.agi.protocol import (
    NEED_DATA,
    AgiConnection,
    AgiState,
    ConnectionClosed,
    EnvironmentReceived,
    Event,
    HangupReceived,
    Reply,
)
from ivr.asterisk.agi.sounds import SoundLengths
from ivr.asterisk.tcp import Connection, Link, TcpService
from ivr.call.channel import readable
from ivr.errors import AgiCommandTimeout, CallHangup, ProtocolError

logger = logging.getLogger("ivr.asterisk.agi")

# A handler may return what the call came to: it ends the log's "call ended" line.
Handler = Callable[[AgiEnvironment, AgiChannel], Awaitable[str | None]]


class _Session:
    """The I/O side of one connection: feeds the protocol object, implements CommandSender."""

    def __init__(self, link: Link, conn: AgiConnection, command_timeout_s: float) -> None:
        self._link = link
        link.attach(conn.receive_data)  # bytes go straight to the protocol object
        self._conn = conn
        self._command_timeout_s = command_timeout_s
        self._broken: str | None = None  # why no further command can be sent
        # One lazily re-armed timer per connection instead of an asyncio.timeout() per
        # command (a third of the server's own CPU per command went to those): the timer
        # checks the current deadline and, once it has passed, closes the connection.
        self._loop = asyncio.get_running_loop()
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timed_out = False

    @property
    def received(self) -> int:
        """Bytes from the peer (0 at EOF: a bare connect, e.g. a port check)."""
        return self._conn.received

    async def next_event(self) -> Event:
        while (event := self._conn.next_event()) is NEED_DATA:
            # At EOF the link has pushed b"": the protocol then yields ConnectionClosed, so
            # EOF ends the loop instead of spinning on it.
            await self._link.readable()
        return event

    async def read_environment(self, timeout_s: float) -> AgiEnvironment | None:
        """The ``agi_*`` block, or ``None`` if the peer closed before finishing it."""
        async with asyncio.timeout(timeout_s):
            event = await self.next_event()
        if isinstance(event, EnvironmentReceived):
            return event.env
        return None  # ConnectionClosed: the protocol yields nothing else before the env

    async def __call__(self, command: str, timeout_s: float | None) -> Reply:
        """Send one command and return its reply (the ``CommandSender`` contract)."""
        if self._broken is not None:
            raise CallHangup(f"AGI connection is closed ({self._broken})")
        hangup = cancelled = False
        bound: float | None = self._command_timeout_s
        try:
            if self._conn.state is not AgiState.IDLE:
                # The previous command was cancelled while waiting: Asterisk runs commands
                # one at a time, so its reply comes first. Drop it to stay in step.
                cancelled = True
                self._set_deadline(bound)
                hangup = (await self._await_reply())[1]
            data = self._conn.send_command(command)
            cancelled, bound = False, timeout_s
            self._set_deadline(timeout_s)
            link = self._link
            link.write(data)
            if link.write_blocked:  # rare: no coroutine per command for it
                await link.drain()
            reply, hung = await self._await_reply()
        except (CallHangup, ConnectionError, OSError) as exc:  # CallHangup or IO_ERRORS
            if not self._timed_out:
                self._fail("I/O error")
                if isinstance(exc, CallHangup):
                    raise
                raise CallHangup(f"AGI connection lost: {exc!r}") from exc
            waiting = (
                f"the reply to a cancelled command (before {command_name(command)})"
                if cancelled
                else command_name(command)
            )
            raise AgiCommandTimeout(
                f"no reply from Asterisk within {bound} s to {waiting}; closing the call"
            ) from None
        except ProtocolError:
            self._fail("protocol error")
            raise
        finally:
            self._deadline = None
        if hangup or hung:
            raise CallHangup("caller hung up (HANGUP)")
        return reply

    def _set_deadline(self, timeout_s: float | None) -> None:
        if timeout_s is None:
            self._deadline = None
            return
        self._deadline = deadline = self._loop.time() + timeout_s
        if self._timer is not None and self._timer.when() <= deadline:
            return  # it fires first, finds the new deadline and re-arms
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        if self._deadline is None or self._broken is not None:
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._check_deadline)
            return
        self._timed_out = True
        self._fail("command timeout")  # EOF for the reader: the waiting command gives up

    async def _await_reply(self) -> tuple[Reply, bool]:
        """Read up to the next reply; also tell whether a ``HANGUP`` line came first."""
        hangup = False
        conn, link = self._conn, self._link
        while True:
            # next_event() inlined: this runs for every command
            while (event := conn.next_event()) is NEED_DATA:
                await link.readable()  # at EOF the protocol yields ConnectionClosed
            if type(event) is Reply:
                return event, hangup
            if isinstance(event, ConnectionClosed):
                if self._broken is None:
                    self._broken = "closed by Asterisk"
                raise CallHangup("Asterisk closed the AGI connection")
            if isinstance(event, HangupReceived):
                hangup = True
                # The reply still comes; bound the wait even for unbounded commands.
                if self._deadline is None or self._deadline > (
                    self._loop.time() + self._command_timeout_s
                ):
                    self._set_deadline(self._command_timeout_s)

    def _fail(self, reason: str) -> None:
        # The stream is out of step (or gone): close now so Asterisk leaves AGI() at once
        # instead of waiting for the handler to finish.
        if self._broken is None:
            self._broken = reason
        self._link.close()
        self.stop_timer()

    def stop_timer(self) -> None:
        """Drop the deadline timer (the call is over; it would keep the session alive)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class AgiServer:
    """Serve FastAGI on ``host:port`` and run ``handler(env, channel)`` for each call.

    ``port=0`` picks a free port (see :attr:`port`). ``command_timeout_s`` bounds each
    command's reply (``AgiCommandTimeout`` ends the call); a playback gets the prompt's length
    on top, read from the files under ``prompts_dir`` (``unknown_prompt_s`` when unknown, see
    :class:`~ivr.asterisk.agi.channel.AgiChannel`). ``header_timeout_s`` bounds the ``agi_*`` block;
    ``max_line_bytes`` bounds any line from Asterisk. Beyond ``max_connections`` at once a
    new connection gets :data:`~ivr.asterisk.agi.limits.BUSY_COMMAND` and is closed, unread;
    ``on_reject`` counts it; ``on_command_error(verb, kind)`` hears of each command that
    timed out or failed (see :class:`~ivr.asterisk.agi.channel.AgiChannel`). Every call's
    socket has TCP keepalive on.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        command_timeout_s: float = 30.0,
        header_timeout_s: float = 5.0,
        max_line_bytes: int = 8192,
        sounds_prefix: str = "",
        prompts_dir: str | None = None,
        unknown_prompt_s: float = 300.0,
        max_connections: int = 2000,
        on_reject: Callable[[], None] | None = None,
        on_command_error: Callable[[str, str], None] | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self._handler = handler
        self.command_timeout_s = command_timeout_s
        self.header_timeout_s = header_timeout_s
        self.max_line_bytes = max_line_bytes
        self.sounds_prefix = sounds_prefix
        self.sounds = SoundLengths(prompts_dir)  # one cache for every call
        self.unknown_prompt_s = unknown_prompt_s
        self.on_command_error = on_command_error
        self._rejections = Rejections(on_reject)
        self._tcp = TcpService(
            self._serve, host=host, port=port, name="FastAGI", what="connection", log=logger,
            max_connections=max_connections, turn_away=self._turn_away, keepalive=True,
        )  # fmt: skip

    # -- lifecycle
    async def start(self) -> None:
        """Start listening (returns once the socket is bound)."""
        await self._tcp.start("AgiServer")

    async def serve_forever(self) -> None:
        """Start if needed and serve until cancelled."""
        await self._tcp.serve_forever("AgiServer")

    async def close(self, grace_s: float = 10.0) -> None:
        """Stop accepting; let calls finish for up to ``grace_s``, then cancel the rest."""
        await self._tcp.close(grace_s, self._overrun)

    @staticmethod
    async def _overrun(pending: set[asyncio.Task[None]]) -> None:
        logger.warning("cancelled %d call(s) still running at shutdown", len(pending))

    async def __aenter__(self) -> AgiServer:
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
    def max_connections(self) -> int:
        """Calls served at once; more are turned away (settable on a running server)."""
        assert self._tcp.max_connections is not None
        return self._tcp.max_connections

    @max_connections.setter
    def max_connections(self, value: int) -> None:
        self._tcp.max_connections = value

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (empty before :meth:`start`)."""
        return self._tcp.sockets

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        return self._tcp.port

    @property
    def active_calls(self) -> int:
        """Connections being served right now (header phase included)."""
        return self._tcp.active

    # -- one connection
    async def _turn_away(self, link: Link) -> None:
        self._rejections.note(self.max_connections)
        await turn_away(link, self.header_timeout_s)

    async def _serve(self, c: Connection) -> None:
        peer = c.peer
        conn = AgiConnection(max_line_bytes=self.max_line_bytes)
        session = _Session(c.link, conn, self.command_timeout_s)
        try:
            try:
                env = await session.read_environment(self.header_timeout_s)
            except TimeoutError:
                logger.warning(
                    "%s sent no AGI environment within %s s", peer, self.header_timeout_s
                )
                return
            if env is None:
                if session.received:
                    logger.info("%s closed the connection before the AGI environment ended", peer)
                else:  # a port check (health probe, load balancer): routine
                    logger.debug("%s closed the connection without sending anything", peer)
                return
            c.log = log = call_logger(readable(env.uniqueid))
            await self._run_handler(env, session, log)
        finally:
            session.stop_timer()

    async def _run_handler(self, env: AgiEnvironment, session: _Session, log: CallLogger) -> None:
        channel = AgiChannel(
            env.to_call_info(),
            session,
            sounds_prefix=self.sounds_prefix,
            command_timeout_s=self.command_timeout_s,
            sounds=self.sounds,
            unknown_prompt_s=self.unknown_prompt_s,
            log=log,
            on_error=self.on_command_error,
        )
        log.info("call started: script=%r channel=%s", env.script, readable(env.channel))
        try:
            summary = await self._handler(env, channel)
        except CallHangup as exc:
            log.info("call ended: hangup (%s)", exc)
        except AgiCommandTimeout as exc:
            log.error("call ended: %s", exc)
        except ProtocolError as exc:
            log.error("call ended: AGI protocol error: %s", exc)
        except Exception:
            # A broken flow must cost one call, never the server.
            log.exception("call ended: handler for script %r failed", env.script)
        else:
            if summary:
                log.info("call ended: %s", summary)
            else:
                log.info("call ended")
