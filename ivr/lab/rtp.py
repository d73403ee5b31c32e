"""RTP as a phone sends it: 20 ms A-law packets and RFC 4733 telephone-event digits."""

from __future__ import annotations

import random
import socket
import struct
import time
from dataclasses import dataclass, field

Address = tuple[str, int]

EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
PCMA, TELEPHONE_EVENT = 8, 101
SILENCE = bytes([0xD5]) * 160  # 20 ms of A-law silence


def rtp_packet(
    *, payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False
) -> bytes:
    """One RTP packet (version 2, no CSRC, no extension)."""
    return (
        struct.pack(
            "!BBHII",
            0x80,
            (0x80 if marker else 0) | payload_type,
            seq & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        + payload
    )


def dtmf_payloads(digit: str, *, packets: int = 8, ends: int = 3) -> list[bytes]:
    """RFC 4733 telephone-event payloads for one digit: ``packets`` updates 20 ms apart,
    then the end packet ``ends`` times (as phones send it)."""
    code = EVENT_CODES[digit]
    out = [struct.pack("!BBH", code, 10, 160 * (i + 1)) for i in range(packets)]
    out += [struct.pack("!BBH", code, 0x80 | 10, 160 * packets)] * ends
    return out


@dataclass
class RtpStream:
    """One RTP source: its socket, SSRC, sequence number and timestamp."""

    sock: socket.socket
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    seq: int = field(default_factory=lambda: random.getrandbits(15))
    timestamp: int = field(default_factory=lambda: random.getrandbits(31))

    def send_audio(self, to: Address) -> None:
        """One 20 ms packet of A-law silence."""
        self.sock.sendto(
            rtp_packet(
                payload_type=PCMA,
                seq=self.seq,
                timestamp=self.timestamp,
                ssrc=self.ssrc,
                payload=SILENCE,
            ),
            to,
        )
        self.seq += 1
        self.timestamp += 160

    def send_digit(self, digit: str, to: Address, *, gap_s: float = 0.02) -> None:
        """One digit as telephone-events, paced ``gap_s`` apart (0: all at once)."""
        payloads = dtmf_payloads(digit)
        for i, payload in enumerate(payloads):
            self.sock.sendto(
                rtp_packet(
                    payload_type=TELEPHONE_EVENT,
                    seq=self.seq,
                    timestamp=self.timestamp,
                    ssrc=self.ssrc,
                    payload=payload,
                    marker=i == 0,
                ),
                to,
            )
            self.seq += 1
            if gap_s:
                time.sleep(gap_s)
        self.timestamp += 160 * (len(payloads) + 1)
