"""Sans-IO FastAGI core: bytes in, events out; commands out as bytes. No asyncio, no sockets.

What Asterisk sends on a FastAGI connection (``res_agi.c``)::

    agi_network: yes
    agi_network_script: bank?lang=zh
    agi_request: agi://127.0.0.1:4573/bank?lang=zh
    agi_channel: PJSIP/sipp-00000001
    ...
    agi_arg_1: retail
    <blank line>

(read into an :class:`ivr.asterisk.agi.environment.AgiEnvironment`), then, per command the
server writes (``ANSWER\\n``), one reply::

    200 result=0                              # ANSWER
    200 result=55 endpos=8640                 # STREAM FILE interrupted by "7" (ASCII 55)
    200 result=-1 endpos=0                    # STREAM FILE: hangup or missing file
    200 result=1 (some (value) here)          # GET VARIABLE, set
    200 result=0                              # GET VARIABLE, unset
    510 Invalid or unknown command
    511 Command Not Permitted on a dead channel or intercept routine
    520-Invalid command syntax.  Proper usage follows:
     Usage: WAIT FOR DIGIT <timeout>
    520 End of proper usage.

and, once the caller hangs up, a bare ``HANGUP`` line (between commands, so from our side it
can show up before the reply to the command just sent). Asterisk then keeps the socket open
until the server closes it.

Usage, as in h11::

    conn = AgiConnection()
    conn.receive_data(data)          # b"" means EOF
    while (event := conn.next_event()) is not NEED_DATA: ...
    sock.send(conn.send_command(commands.stream_file("hello-world", "12")))

Command lines are built by :mod:`ivr.asterisk.agi.commands` and replies parsed by
:mod:`ivr.asterisk.agi.replies` (``format_command``, ``Reply`` and ``parse_reply_line`` are
re-exported here).
"""

from __future__ import annotations

import enum
import re
import string
from collections import deque
from dataclasses import dataclass
from typing import Final

from ivr.asterisk.agi.commands import MAX_COMMAND_BYTES, check_line, format_command, quote_arg
from ivr.asterisk.agi.environment import AgiEnvironment
from ivr.asterisk.agi.replies import STATUS_LINE, USAGE_END, Reply, parse_reply_line
from ivr.errors import LocalProtocolError, ProtocolError

__all__ = [
    "DEFAULT_MAX_LINE_BYTES", "MAX_COMMAND_BYTES", "NEED_DATA", "AgiConnection",
    "AgiState", "ConnectionClosed", "EnvironmentReceived", "Event",
    "HangupReceived", "Reply", "format_command", "parse_reply_line",
    "quote_arg",
]  # fmt: skip

DEFAULT_MAX_LINE_BYTES: Final = 8192
_MAX_BLOCK_LINES: Final = 512  # env keys or usage lines; real blocks are < 40
_KEY_CHARS = string.ascii_letters + string.digits + "_"  # of an agi_* key
# The same lines as _header_line takes (value: after ":" and at most one space), "\n" only.
_HEADER_BLOCK = re.compile(r"(?:agi_\w+:[^\n\r]*\n)+", re.ASCII)
_HEADER_PAIR = re.compile(r"^(agi_\w+): ?(.*)$", re.ASCII | re.MULTILINE)


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _NeedData.NEED_DATA
"""Returned by :meth:`AgiConnection.next_event` when more bytes are needed."""


# --------------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class EnvironmentReceived:
    """The ``agi_*`` block ended with its blank line."""

    env: AgiEnvironment


@dataclass(frozen=True, slots=True)
class HangupReceived:
    """Asterisk sent the ``HANGUP`` line: the caller is gone (replies may still follow)."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection (``receive_data(b"")``)."""


Event = EnvironmentReceived | Reply | HangupReceived | ConnectionClosed


# --------------------------------------------------------------------------- connection
class AgiState(enum.Enum):
    """Where the connection is in the conversation."""

    HEADER = "header"  # reading the agi_* block
    IDLE = "idle"  # no command in flight
    AWAITING_REPLY = "awaiting_reply"
    IN_BLOCK = "in_block"  # inside a multi-line (520-) reply
    CLOSED = "closed"


class AgiConnection:
    """The server side of one FastAGI connection, without I/O.

    Feed bytes with :meth:`receive_data`, pull events with :meth:`next_event` until it returns
    :data:`NEED_DATA`; turn commands into bytes with :meth:`send_command`. Only one command
    may be in flight (AGI has no pipelining). Any malformed input raises
    :class:`ProtocolError`, and the connection stays broken after that.
    """

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 64:
            raise ValueError("max_line_bytes must be at least 64")
        self.max_line_bytes = max_line_bytes
        self.state = AgiState.HEADER
        self.env: AgiEnvironment | None = None
        self.hangup_received = False
        self.received = 0  # bytes from the peer so far
        self._buffer = bytearray()
        self._lines: deque[str] = deque()  # complete lines not handled yet
        self._eof = False
        self._error: ProtocolError | None = None
        self._headers: dict[str, str] = {}
        self._block: list[str] = []
        self._block_code = 0

    # -- input
    def receive_data(self, data: bytes) -> None:
        """Add bytes from the peer; ``b""`` means the peer closed the connection."""
        if self._eof:
            if data:
                raise LocalProtocolError("receive_data() after EOF")
            return
        if data:
            self._buffer += data
            self.received += len(data)
        else:
            self._eof = True

    def next_event(self) -> Event | _NeedData:
        """The next event, or :data:`NEED_DATA`. Raises :class:`ProtocolError` on bad input."""
        if self._error is not None:
            raise self._error
        state = self.state
        if state is AgiState.CLOSED:
            return ConnectionClosed()
        try:
            if not self._lines:  # the usual cases first, without the line-by-line machinery
                if not self._buffer:
                    if not self._eof:
                        return NEED_DATA  # e.g. right after a command: its reply is not in yet
                elif state is AgiState.AWAITING_REPLY:
                    if (reply := self._single_reply()) is not None:
                        return reply
                elif (
                    state is AgiState.HEADER
                    and not self._headers
                    and (env := self._header_block()) is not None
                ):
                    return env
            while (line := self._next_line()) is not None:
                event = self._handle_line(line)
                if event is not None:
                    return event
        except ProtocolError as exc:
            self._error = exc
            self.state = AgiState.CLOSED
            raise
        if self._eof:
            self.state = AgiState.CLOSED  # a partial last line is dropped with the connection
            return ConnectionClosed()
        return NEED_DATA

    def _next_line(self) -> str | None:
        if not self._lines:
            self._split_lines()
            if not self._lines:
                return None
        return self._lines.popleft()

    def _split_lines(self) -> None:
        """Move every complete line from the buffer to ``_lines`` (one decode for all)."""
        buffer = self._buffer
        end = buffer.rfind(b"\n")
        if end < 0:
            if len(buffer) > self.max_line_bytes:
                raise ProtocolError(f"AGI line longer than {self.max_line_bytes} bytes")
            return
        chunk = bytes(buffer[:end])
        del buffer[: end + 1]
        if len(chunk) > self.max_line_bytes and any(
            len(raw) > self.max_line_bytes for raw in chunk.split(b"\n")
        ):
            raise ProtocolError(f"AGI line longer than {self.max_line_bytes} bytes")
        # Caller names from an old PBX arrive as Latin-1 or GBK bytes: keep them (lossless,
        # see ivr.call.channel.readable) rather than drop the call over a display name.
        # Decoding the lines together gives the same text as one by one ("\n" is ASCII).
        text = chunk.decode("utf-8", "surrogateescape")
        if "\r" in text:
            self._lines.extend(line.removesuffix("\r") for line in text.split("\n"))
        else:
            self._lines.extend(text.split("\n"))

    def _handle_line(self, line: str) -> Event | None:
        if self.state is AgiState.HEADER:
            return self._header_line(line)
        if self.state is AgiState.IN_BLOCK:
            return self._block_line(line)
        if line == "HANGUP":
            self.hangup_received = True
            return HangupReceived()
        if not line:
            return None  # stray blank lines carry nothing; tolerate them
        if self.state is AgiState.IDLE:
            raise ProtocolError(f"unexpected line while no command is pending: {line[:80]!r}")
        if line.startswith("200 "):  # final by definition: no status-line pass first
            self.state = AgiState.IDLE
            return parse_reply_line(line)
        m = STATUS_LINE.fullmatch(line)
        if m is None:
            raise ProtocolError(f"not an AGI reply line: {line[:80]!r}")
        if m.group(2) == "-":
            self.state = AgiState.IN_BLOCK
            self._block_code, self._block = int(m.group(1)), [line]
            return None
        if m.group(1) == "100":
            return None  # "100 result=0 Trying..." (GOSUB): the final reply comes later
        self.state = AgiState.IDLE
        return parse_reply_line(line)

    def _single_reply(self) -> Reply | None:
        """The usual reply as it comes: one whole ``200`` line and nothing after it (a
        ``HANGUP``, a multi-line or a partial reply go line by line)."""
        buffer = self._buffer
        end = len(buffer) - 1
        if end > self.max_line_bytes or buffer.find(b"\n") != end or not buffer.startswith(b"200 "):
            return None
        line = buffer[:end].decode("utf-8", "surrogateescape").removesuffix("\r")
        buffer.clear()
        self.state = AgiState.IDLE  # as _handle_line: a 200 line is final
        return parse_reply_line(line)

    def _header_block(self) -> EnvironmentReceived | None:
        """The whole ``agi_*`` block at once, when it is all in and well formed (Asterisk
        writes it in one piece): two regex passes instead of three calls and a dozen string
        methods for each of its 25 lines. ``None`` leaves it to the line-by-line path, which
        also names what is wrong."""
        buffer = self._buffer
        end = buffer.find(b"\n\n")
        if end < 0 or end + 1 > self.max_line_bytes:
            return None  # incomplete, or long enough that its lines need checking
        text = buffer[: end + 1].decode("utf-8", "surrogateescape")
        if _HEADER_BLOCK.fullmatch(text) is None or text.count("\n") > _MAX_BLOCK_LINES:
            return None
        del buffer[: end + 2]
        self.env = AgiEnvironment.from_headers(dict(_HEADER_PAIR.findall(text)))
        self.state = AgiState.IDLE
        return EnvironmentReceived(self.env)

    def _header_line(self, line: str) -> Event | None:
        if line:
            # "agi_<[A-Za-z0-9_]+>:<value>", without a regex: some 25 lines a call
            key, colon, value = line.partition(":")
            if not (colon and key.startswith("agi_") and key[4:] and not key.strip(_KEY_CHARS)):
                raise ProtocolError(f"not an agi_* environment line: {line[:80]!r}")
            if len(self._headers) >= _MAX_BLOCK_LINES:
                raise ProtocolError("AGI environment has too many lines")
            self._headers[key] = value.removeprefix(" ")
            return None
        if not self._headers:
            raise ProtocolError("empty AGI environment")
        self.env = AgiEnvironment.from_headers(self._headers)
        self.state = AgiState.IDLE
        return EnvironmentReceived(self.env)

    def _block_line(self, line: str) -> Event | None:
        terminator = f"{self._block_code} "
        if line.startswith(terminator) or line.endswith(USAGE_END):
            if not line.startswith(terminator):
                # Some versions print the usage without a final newline, which glues the
                # terminator onto the last usage line.
                self._block.append(line.removesuffix(USAGE_END))
                line = USAGE_END
            usage = "\n".join(self._block[1:]).strip("\n")
            raw = "\n".join([*self._block, line])
            self.state, self._block = AgiState.IDLE, []
            return Reply(self._block_code, "", usage, None, raw)
        if len(self._block) >= _MAX_BLOCK_LINES:
            raise ProtocolError("multi-line AGI reply is too long")
        self._block.append(line)
        return None

    # -- output
    def send_command(self, command: str) -> bytes:
        """Encode one command line (e.g. from :func:`format_command`) to send to Asterisk."""
        if self.state is AgiState.HEADER:
            raise LocalProtocolError("cannot send a command before the AGI environment")
        if self.state is AgiState.CLOSED:
            raise LocalProtocolError("cannot send a command on a closed AGI connection")
        if self.state is not AgiState.IDLE:
            raise LocalProtocolError("an AGI command is already waiting for its reply")
        check_line(command)
        data = command.encode("utf-8", "surrogateescape") + b"\n"  # bytes read come back as-is
        if len(data) - 1 > MAX_COMMAND_BYTES:
            raise ValueError(f"AGI command longer than {MAX_COMMAND_BYTES} bytes")
        self.state = AgiState.AWAITING_REPLY
        return data
