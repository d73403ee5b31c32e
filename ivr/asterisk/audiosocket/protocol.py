"""Sans-IO AudioSocket core: bytes in, frames out; frames out as bytes. No asyncio, no sockets.

Asterisk's ``AudioSocket(<uuid>,<host:port>)`` application connects to the server and speaks
frames of ``kind(1) length(2, big-endian) payload``::

    01 00 10 <16 bytes>        the call's uuid, always the first frame
    10 01 40 <320 bytes>       20 ms of audio: signed linear 16-bit, 8 kHz, mono, little-endian
    03 00 01 37                DTMF "7" (one ASCII digit; Asterisk 20+)
    00 00 00                   hangup (closing the socket means the same)
    ff 00 01 01                error; optional code: 0x01 hangup, 0x02 frame forwarding, 0x04 memory

Audio the server writes back (kind 0x10) is played to the caller; a hangup frame from the
server makes ``AudioSocket()`` return so the dialplan continues.

Usage, as in h11::

    conn = AudioSocketConnection()
    conn.receive_data(data)          # b"" means EOF
    while (event := conn.next_event()) is not NEED_DATA: ...
    sock.send(conn.send_audio(pcm))

Any malformed input raises :class:`ProtocolError` naming the problem, and the connection stays
broken after that.
"""

from __future__ import annotations

import enum
import uuid as uuid_mod
from dataclasses import dataclass
from typing import Final, Literal

from ivr.errors import LocalProtocolError, ProtocolError

__all__ = [
    "DEFAULT_MAX_AUDIO_BYTES", "DTMF_FRAME_DIGITS", "ERROR_FRAME_FORWARDING", "ERROR_HANGUP",
    "ERROR_MEMORY", "FRAME_BYTES", "HEADER_BYTES", "KIND_AUDIO", "KIND_DTMF", "KIND_ERROR",
    "KIND_HANGUP", "KIND_UUID", "MAX_PAYLOAD_BYTES", "NEED_DATA", "Audio",
    "AudioSocketConnection", "ConnectionClosed", "Dtmf", "ErrorFrame", "Event", "Frame",
    "Hangup", "Uuid", "encode_frame",
]  # fmt: skip

KIND_HANGUP: Final = 0x00
KIND_UUID: Final = 0x01
KIND_DTMF: Final = 0x03
KIND_AUDIO: Final = 0x10
KIND_ERROR: Final = 0xFF

ERROR_HANGUP: Final = 0x01  # the calling party hung up
ERROR_FRAME_FORWARDING: Final = 0x02
ERROR_MEMORY: Final = 0x04

HEADER_BYTES: Final = 3
FRAME_BYTES: Final = 320  # 20 ms of 8 kHz 16-bit mono
MAX_PAYLOAD_BYTES: Final = 0xFFFF  # what the 16-bit length field can say
DEFAULT_MAX_AUDIO_BYTES: Final = 16384  # ~1 s; Asterisk sends 320
_MAX_ERROR_BYTES: Final = 64  # "optional application-specific error code"
# Digits Asterisk forwards: the phone keys plus the A-D column of RFC 4733.
DTMF_FRAME_DIGITS: Final = "0123456789*#ABCD"


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _NeedData.NEED_DATA
"""Returned by :meth:`AudioSocketConnection.next_event` when more bytes are needed."""


# --------------------------------------------------------------------------- frames
@dataclass(frozen=True, slots=True)
class Uuid:
    """Kind 0x01: the uuid given to ``AudioSocket()``; it identifies the call."""

    uuid: uuid_mod.UUID


@dataclass(frozen=True, slots=True)
class Audio:
    """Kind 0x10: signed linear 16-bit 8 kHz mono PCM, little-endian."""

    pcm: bytes

    def __repr__(self) -> str:  # 320 bytes of audio make unreadable test failures
        return f"Audio(<{len(self.pcm)} bytes>)"


@dataclass(frozen=True, slots=True)
class Dtmf:
    """Kind 0x03: one key the caller pressed (``"0"-"9"``, ``"*"``, ``"#"``, ``"A"-"D"``)."""

    digit: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """Kind 0x00: the peer ends the session."""


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """Kind 0xff: an error; ``code`` is the payload's first byte (``None`` if empty)."""

    code: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection (``receive_data(b"")``); a partial frame is dropped."""


Frame = Uuid | Audio | Dtmf | Hangup | ErrorFrame
Event = Frame | ConnectionClosed


def encode_frame(frame: Frame) -> bytes:
    """The wire bytes of any frame (both directions; test clients use it to play Asterisk)."""
    if isinstance(frame, Uuid):
        return _pack(KIND_UUID, frame.uuid.bytes)
    if isinstance(frame, Audio):
        return _pack(KIND_AUDIO, frame.pcm)
    if isinstance(frame, Dtmf):
        return _pack(KIND_DTMF, frame.digit.encode("ascii"))
    if isinstance(frame, Hangup):
        return _pack(KIND_HANGUP, b"")
    return _pack(KIND_ERROR, b"" if frame.code is None else bytes([frame.code]))


def _pack(kind: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"AudioSocket payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


# --------------------------------------------------------------------------- connection
class AudioSocketConnection:
    """One AudioSocket connection, without I/O.

    ``role="server"`` (the default) is our side of a connection Asterisk made: the first frame
    must be the uuid (available as :attr:`uuid` afterwards) and a second uuid is an error.
    ``role="client"`` plays Asterisk (tests): frames from the server carry no uuid.
    Audio payloads are bounded by ``max_audio_bytes`` and must hold whole 16-bit samples.
    """

    def __init__(
        self,
        *,
        role: Literal["server", "client"] = "server",
        max_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES,
    ) -> None:
        if not 2 <= max_audio_bytes <= MAX_PAYLOAD_BYTES:
            raise ValueError(f"max_audio_bytes must be in 2..{MAX_PAYLOAD_BYTES}")
        self.role = role
        self.max_audio_bytes = max_audio_bytes
        self.uuid: uuid_mod.UUID | None = None
        self.hangup_received = False
        self.hangup_sent = False
        self._buffer = bytearray()
        self._eof = False
        self._closed = False
        self._error: ProtocolError | None = None

    # -- input
    def receive_data(self, data: bytes) -> None:
        """Add bytes from the peer; ``b""`` means the peer closed the connection."""
        if self._eof:
            if data:
                raise LocalProtocolError("receive_data() after EOF")
            return
        if data:
            self._buffer += data
        else:
            self._eof = True

    def next_event(self) -> Event | _NeedData:
        """The next frame, :class:`ConnectionClosed`, or :data:`NEED_DATA`.

        Raises :class:`ProtocolError` on bad input (and again on every later call).
        """
        if self._error is not None:
            raise self._error
        if self._closed:
            return ConnectionClosed()
        try:
            frame = self._next_frame()
        except ProtocolError as exc:
            self._error = exc
            self._closed = True
            raise
        if frame is not None:
            return frame
        if self._eof:
            self._closed = True
            return ConnectionClosed()
        return NEED_DATA

    def _next_frame(self) -> Frame | None:
        if len(self._buffer) < HEADER_BYTES:
            if self._buffer:
                self._check_header_start()
            return None
        kind = self._buffer[0]
        length = int.from_bytes(self._buffer[1:3], "big")
        self._check_header(kind, length)
        if len(self._buffer) < HEADER_BYTES + length:
            return None
        payload = bytes(self._buffer[HEADER_BYTES : HEADER_BYTES + length])
        del self._buffer[: HEADER_BYTES + length]
        return self._decode(kind, payload)

    def _check_header_start(self) -> None:
        # Fail on the kind byte at once instead of waiting for a length that may never come.
        kind = self._buffer[0]
        if kind not in (KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_AUDIO, KIND_ERROR):
            raise ProtocolError(f"unknown AudioSocket frame kind 0x{kind:02x}")
        self._check_order(kind)

    def _check_header(self, kind: int, length: int) -> None:
        """Validate kind and length before buffering the payload (bounds memory per peer)."""
        self._check_header_start()
        if kind == KIND_UUID and length != 16:
            raise ProtocolError(f"AudioSocket uuid frame must hold 16 bytes, got {length}")
        if kind == KIND_DTMF and length != 1:
            raise ProtocolError(f"AudioSocket DTMF frame must hold 1 byte, got {length}")
        if kind == KIND_HANGUP and length != 0:
            raise ProtocolError(f"AudioSocket hangup frame must be empty, got {length} bytes")
        if kind == KIND_ERROR and length > _MAX_ERROR_BYTES:
            raise ProtocolError(
                f"AudioSocket error frame of {length} bytes (max {_MAX_ERROR_BYTES})"
            )
        if kind == KIND_AUDIO:
            if length > self.max_audio_bytes:
                raise ProtocolError(
                    f"AudioSocket audio frame of {length} bytes exceeds {self.max_audio_bytes}"
                )
            if length % 2:
                raise ProtocolError(
                    f"AudioSocket audio frame of {length} bytes is not whole 16-bit samples"
                )

    def _check_order(self, kind: int) -> None:
        if self.role != "server":
            if kind == KIND_UUID:
                raise ProtocolError("AudioSocket uuid frame sent by the server")
            return
        if self.uuid is None and kind != KIND_UUID:
            raise ProtocolError(f"first AudioSocket frame must be the uuid, got kind 0x{kind:02x}")
        if self.uuid is not None and kind == KIND_UUID:
            raise ProtocolError("second AudioSocket uuid frame on one connection")

    def _decode(self, kind: int, payload: bytes) -> Frame:
        if kind == KIND_AUDIO:
            return Audio(payload)
        if kind == KIND_UUID:
            self.uuid = uuid_mod.UUID(bytes=payload)
            return Uuid(self.uuid)
        if kind == KIND_DTMF:
            digit = chr(payload[0])
            if digit not in DTMF_FRAME_DIGITS:
                raise ProtocolError(f"AudioSocket DTMF frame holds {payload!r}, not a DTMF digit")
            return Dtmf(digit)
        if kind == KIND_HANGUP:
            self.hangup_received = True
            return Hangup()
        return ErrorFrame(payload[0] if payload else None)

    # -- output
    def send_audio(self, pcm: bytes) -> bytes:
        """One audio frame (8 kHz 16-bit mono; usually 320 bytes = 20 ms)."""
        if self.hangup_sent:
            raise LocalProtocolError("cannot send audio after the hangup frame")
        if len(pcm) % 2:
            raise ValueError(f"audio of {len(pcm)} bytes is not whole 16-bit samples")
        return _pack(KIND_AUDIO, pcm)

    def send_hangup(self) -> bytes:
        """The hangup frame: Asterisk's ``AudioSocket()`` returns and the dialplan goes on."""
        self.hangup_sent = True
        return _pack(KIND_HANGUP, b"")
