"""The sans-IO AudioSocket codec, from bytes: no sockets, no mocks."""

from __future__ import annotations

import uuid

import pytest

from ivr.asterisk.audiosocket.protocol import (
    NEED_DATA,
    Audio,
    AudioSocketConnection,
    ConnectionClosed,
    Dtmf,
    ErrorFrame,
    Event,
    Hangup,
    Uuid,
    encode_frame,
)
from ivr.errors import LocalProtocolError, ProtocolError

UID = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")
UUID_FRAME = b"\x01\x00\x10" + UID.bytes
PCM = bytes(range(256)) + bytes(64)  # 320 bytes


def events(conn: AudioSocketConnection) -> list[Event]:
    out: list[Event] = []
    while (event := conn.next_event()) is not NEED_DATA:
        out.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return out


def test_every_kind_from_one_buffer() -> None:
    conn = AudioSocketConnection()
    conn.receive_data(
        UUID_FRAME
        + b"\x10\x01\x40" + PCM
        + b"\x03\x00\x017" + b"\x03\x00\x01*" + b"\x03\x00\x01#"
        + b"\xff\x00\x01\x02" + b"\xff\x00\x00"
        + b"\x00\x00\x00"
    )  # fmt: skip
    conn.receive_data(b"")
    assert events(conn) == [
        Uuid(UID), Audio(PCM), Dtmf("7"), Dtmf("*"), Dtmf("#"), ErrorFrame(2), ErrorFrame(None),
        Hangup(), ConnectionClosed(),
    ]  # fmt: skip
    assert conn.uuid == UID
    assert conn.hangup_received


def test_split_reads_byte_by_byte() -> None:
    wire = UUID_FRAME + encode_frame(Audio(PCM)) + encode_frame(Dtmf("5")) + encode_frame(Hangup())
    conn = AudioSocketConnection()
    got: list[Event] = []
    for i in range(len(wire)):
        conn.receive_data(wire[i : i + 1])
        got.extend(events(conn))
    assert got == [Uuid(UID), Audio(PCM), Dtmf("5"), Hangup()]
    assert conn.next_event() is NEED_DATA


def test_encode_frame_round_trips_every_kind() -> None:
    frames = [Uuid(UID), Audio(PCM), Dtmf("0"), Dtmf("D"), ErrorFrame(1), ErrorFrame(), Hangup()]
    conn = AudioSocketConnection()
    conn.receive_data(b"".join(encode_frame(f) for f in frames))
    assert events(conn) == frames
    assert encode_frame(Hangup()) == b"\x00\x00\x00"
    assert encode_frame(Dtmf("7")) == b"\x03\x00\x017"
    assert encode_frame(Audio(PCM))[:3] == b"\x10\x01\x40"


def test_server_frames_back_to_back_to_a_client() -> None:
    server, client = AudioSocketConnection(), AudioSocketConnection(role="client")
    client.receive_data(server.send_audio(PCM) + server.send_hangup())
    assert events(client) == [Audio(PCM), Hangup()]
    with pytest.raises(LocalProtocolError, match="after the hangup"):
        server.send_audio(PCM)
    with pytest.raises(ValueError, match="16-bit"):
        AudioSocketConnection().send_audio(b"\x00")


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x10\x01\x40" + PCM, "first AudioSocket frame must be the uuid, got kind 0x10"),
        (b"\x03\x00\x011", "first AudioSocket frame must be the uuid"),
        (b"\x01\x00\x08" + bytes(8), "uuid frame must hold 16 bytes, got 8"),
        (UUID_FRAME + UUID_FRAME, "second AudioSocket uuid frame"),
        (UUID_FRAME + b"\x03\x00\x0212", "DTMF frame must hold 1 byte, got 2"),
        (UUID_FRAME + b"\x03\x00\x01x", "not a DTMF digit"),
        (UUID_FRAME + b"\x00\x00\x01\x00", "hangup frame must be empty"),
        (UUID_FRAME + b"\x10\x00\x03abc", "not whole 16-bit samples"),
        (UUID_FRAME + b"\xff\x01\x00", "error frame of 256 bytes"),
        (UUID_FRAME + b"\x42", "unknown AudioSocket frame kind 0x42"),
        (b"GET / HTTP/1.1\r\n", "unknown AudioSocket frame kind 0x47"),
    ],
)
def test_bad_input_is_a_protocol_error_naming_the_problem(wire: bytes, message: str) -> None:
    conn = AudioSocketConnection()
    conn.receive_data(wire)
    with pytest.raises(ProtocolError, match=message):
        events(conn)
    with pytest.raises(ProtocolError, match=message):  # the connection stays broken
        conn.next_event()


def test_oversize_audio_fails_on_the_header_before_the_payload_arrives() -> None:
    conn = AudioSocketConnection(max_audio_bytes=16384)
    conn.receive_data(UUID_FRAME + b"\x10\x40\x02")  # 16386 bytes announced, none sent
    assert conn.next_event() == Uuid(UID)
    with pytest.raises(ProtocolError, match="16386 bytes exceeds 16384"):
        conn.next_event()


def test_largest_allowed_audio_frame_passes() -> None:
    conn = AudioSocketConnection(max_audio_bytes=16384)
    conn.receive_data(UUID_FRAME + encode_frame(Audio(bytes(16384))))
    assert events(conn) == [Uuid(UID), Audio(bytes(16384))]


def test_eof_mid_frame_closes_and_drops_the_partial_frame() -> None:
    conn = AudioSocketConnection()
    conn.receive_data(UUID_FRAME + b"\x10\x01\x40" + PCM[:100])
    conn.receive_data(b"")
    assert events(conn) == [Uuid(UID), ConnectionClosed()]
    assert conn.next_event() == ConnectionClosed()
    with pytest.raises(LocalProtocolError, match="after EOF"):
        conn.receive_data(b"x")


def test_client_role_refuses_a_uuid_from_the_server() -> None:
    client = AudioSocketConnection(role="client")
    client.receive_data(UUID_FRAME)
    with pytest.raises(ProtocolError, match="uuid frame sent by the server"):
        client.next_event()


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="max_audio_bytes"):
        AudioSocketConnection(max_audio_bytes=70000)
    with pytest.raises(ValueError, match="exceeds 65535"):
        encode_frame(Audio(bytes(65536)))
