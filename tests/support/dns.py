"""A throw-away DNS server for the FastAGI SRV records: Debian's dnsmasq on a loopback address.

Asterisk's ``hagi://name`` looks up ``_agi._tcp.name`` through its resolver, which always
asks port 53 (``/etc/resolv.conf`` has no port), so the server listens on 127.0.0.153:53
(needs root, as the lab does). Nothing but the records given is answered: no upstream, no
``/etc/hosts``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ADDRESS = "127.0.0.153"


@dataclass(frozen=True)
class Srv:
    """One SRV target: a host name (given an address here) and its port and priority."""

    host: str
    address: str
    port: int
    priority: int = 10
    weight: int = 10


def dnsmasq_args(service: str, targets: Sequence[Srv], address: str = ADDRESS) -> list[str]:
    """The dnsmasq command line answering ``_agi._tcp.<service>`` with ``targets``."""
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    args = [
        binary,
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        f"--listen-address={address}",
        "--port=53",
        "--pid-file=",
        "--log-queries",
        "--log-facility=-",
    ]
    for t in targets:
        args.append(f"--srv-host=_agi._tcp.{service},{t.host},{t.port},{t.priority},{t.weight}")
        args.append(f"--host-record={t.host},{t.address}")
    return args


@contextmanager
def srv_server(
    service: str, targets: Sequence[Srv], log: Path, address: str = ADDRESS
) -> Iterator[subprocess.Popen[bytes]]:
    """dnsmasq serving the records while the block runs (its log in ``log``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            dnsmasq_args(service, targets, address), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_listening(proc, address, log)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_listening(proc: subprocess.Popen[bytes], address: str, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dnsmasq exited with {proc.returncode}: {log.read_text()[-800:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:  # dnsmasq holds the UDP port once it serves
                sock.bind((address, 53))
            except OSError:
                return
        time.sleep(0.05)
    raise RuntimeError(f"dnsmasq did not listen on {address}:53: {log.read_text()[-800:]}")


@contextmanager
def resolver(root: Path, address: str = ADDRESS) -> Iterator[None]:
    """The chroot at ``root`` resolves through ``address`` while the block runs (its own
    ``/etc/resolv.conf`` is put back after)."""
    conf = root / "etc" / "resolv.conf"
    saved = conf.read_bytes() if conf.exists() else None
    conf.write_text(f"nameserver {address}\noptions timeout:1 attempts:1\n")
    try:
        yield
    finally:
        if saved is None:
            conf.unlink(missing_ok=True)
        else:
            conf.write_bytes(saved)
