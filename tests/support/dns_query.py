"""One DNS question over UDP and its answers, with the standard library only (RFC 1035).

Enough to read what a test's DNS server says: :func:`a_records` as dotted quads,
:func:`srv_records` as (priority, weight, port, target), in the order of the answer.
"""

from __future__ import annotations

import secrets
import socket
import struct

A, SRV = 1, 33


def _name(message: bytes, at: int) -> tuple[str, int]:
    """The (possibly compressed) name at ``at``, and the offset just after it."""
    labels: list[str] = []
    after: int | None = None
    while True:
        length = message[at]
        if length & 0xC0 == 0xC0:  # a pointer to a name earlier in the message
            after = at + 2 if after is None else after
            at = ((length & 0x3F) << 8) | message[at + 1]
            continue
        at += 1
        if length == 0:
            return ".".join(labels), at if after is None else after
        labels.append(message[at : at + length].decode("ascii"))
        at += length


def _ask(server: tuple[str, int], name: str, qtype: int) -> list[tuple[int, bytes, int]]:
    """The answers to ``name`` from ``server`` (host, port): (type, message, rdata offset)."""
    ident = secrets.randbits(16)
    question = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.split(".")) + b"\0"
    query = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question
    query += struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(query, server)
        message = sock.recv(4096)
    got, _flags, questions, answers = struct.unpack(">HHHH", message[:8])
    assert got == ident, "an answer to another question"
    at = 12
    for _ in range(questions):
        at = _name(message, at)[1] + 4
    out = []
    for _ in range(answers):
        at = _name(message, at)[1]
        rtype, _cls, _ttl, length = struct.unpack(">HHIH", message[at : at + 10])
        out.append((rtype, message, at + 10))
        at += 10 + length
    return out


def a_records(server: tuple[str, int], name: str) -> list[str]:
    """The IPv4 addresses ``server`` gives for ``name``."""
    return [
        socket.inet_ntoa(message[data : data + 4])
        for rtype, message, data in _ask(server, name, A)
        if rtype == A
    ]


def srv_records(server: tuple[str, int], name: str) -> list[tuple[int, int, int, str]]:
    """(priority, weight, port, target) of each SRV record ``server`` gives for ``name``."""
    out = []
    for rtype, message, data in _ask(server, name, SRV):
        if rtype == SRV:
            priority, weight, port = struct.unpack(">HHH", message[data : data + 6])
            out.append((priority, weight, port, _name(message, data + 6)[0]))
    return out
