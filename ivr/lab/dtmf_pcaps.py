"""RFC 2833 digits as SIPp plays them: its stock pcaps, renumbered to follow each other."""

from __future__ import annotations

import struct
from pathlib import Path

from ivr.errors import LabError

PCAP_DIR = Path("/usr/share/sip-tester")
DIGIT_NAMES = {"*": "star", "#": "pound", **{str(d): str(d) for d in range(10)}}


def stock_pcaps(digits: tuple[str, ...]) -> list[Path]:
    """SIPp's own RFC 2833 pcaps for ``digits`` (each with its own sequence numbers)."""
    return [PCAP_DIR / f"dtmf_2833_{DIGIT_NAMES[d]}.pcap" for d in digits]


def digit_pcaps(digits: tuple[str, ...], workdir: Path) -> list[Path]:
    """SIPp's RFC 2833 pcaps for ``digits``, rewritten so RTP sequence numbers and
    timestamps only grow from one digit to the next.

    The stock files each carry their own timestamps, and Asterisk drops a telephone-event
    older than the last one it saw: "5" then "1" would lose the "1"."""
    out = []
    for i, (digit, stock) in enumerate(zip(digits, stock_pcaps(digits), strict=True)):
        path = workdir / f"dtmf-{i:02d}-{DIGIT_NAMES[digit]}.pcap"
        if not path.exists():
            path.write_bytes(
                _shift_rtp(stock.read_bytes(), seq=1000 * (i + 1), timestamp=160_000 * (i + 1))
            )
        out.append(path.resolve())
    return out


def _shift_rtp(pcap: bytes, *, seq: int, timestamp: int) -> bytes:
    """A copy of a libpcap file of RTP/UDP/IPv4 packets, renumbered from ``seq`` and with
    timestamps moved to start at ``timestamp`` (UDP checksums cleared: optional in IPv4)."""
    link = struct.unpack_from("<I", pcap, 20)[0]
    l2 = {1: 14, 113: 16}.get(link)
    if l2 is None or struct.unpack_from("<I", pcap, 0)[0] != 0xA1B2C3D4:
        raise LabError(f"unexpected pcap format (link type {link})")
    data = bytearray(pcap)
    offset, first_seq, first_ts = 24, None, None
    while offset + 16 <= len(data):
        incl = struct.unpack_from("<I", data, offset + 8)[0]
        ip = offset + 16 + l2
        udp = ip + (data[ip] & 0x0F) * 4
        rtp = udp + 8
        old_seq, old_ts = struct.unpack_from(">HI", data, rtp + 2)
        first_seq = old_seq if first_seq is None else first_seq
        first_ts = old_ts if first_ts is None else first_ts
        struct.pack_into(
            ">HI",
            data,
            rtp + 2,
            (seq + old_seq - first_seq) & 0xFFFF,
            (timestamp + old_ts - first_ts) & 0xFFFFFFFF,
        )
        struct.pack_into(">H", data, udp + 6, 0)
        offset += 16 + incl
    return bytes(data)
