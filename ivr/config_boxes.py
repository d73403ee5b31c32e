"""Several Asterisk boxes in the configuration (``ami.boxes``): one box's address and name,
and the check that no two boxes share a name or an address."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.errors import ConfigError

__all__ = ["AmiBox", "check_boxes"]

_BOX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class AmiBox:
    """One Asterisk box: its ``systemname`` and its manager's address."""

    name: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, default_port: int) -> AmiBox:
        """``"pbx1@10.0.0.5:5038"``; :class:`ValueError` saying what is wrong."""
        name, at, address = text.strip().partition("@")
        host, colon, port = address.rpartition(":") if ":" in address else (address, "", "")
        if not at or not _BOX_NAME.fullmatch(name) or not host:
            raise ValueError(
                f"{text!r} is not name@host[:port] with the box's systemname as name "
                "(letters, digits, '.', '_', '-')"
            )
        if colon and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # IPv6
        return cls(name, host, int(port) if colon else default_port)


def check_boxes(boxes: Sequence[AmiBox], origin: str) -> None:
    """:class:`ConfigError` when two boxes have the same name or the same address."""
    for what, values in (
        ("name", [b.name for b in boxes]),
        ("address", [f"{b.host}:{b.port}" for b in boxes]),
    ):
        if len(set(values)) != len(values):
            raise ConfigError(f"{origin}: ami.boxes: two boxes have the same {what}")
