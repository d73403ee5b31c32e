"""The lab's Asterisk as a process in the chroot: free ports, start, stop, ``asterisk -rx``.

A chroot shares the host's network, so FastAGI (4573), AudioSocket (4574) and AMI (5038) are
all on 127.0.0.1.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from ivr.errors import LabError
from ivr.lab.host import run
from ivr.lab.paths import LabPaths

# (protocol, address, port): what the lab's Asterisk binds (see asterisk-conf/)
PORTS = (("udp", "0.0.0.0", 5060), ("udp", "127.0.0.1", 5080), ("tcp", "127.0.0.1", 5038))
CHROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def check_ports() -> None:
    """Raise if anything already holds the lab's SIP or AMI ports."""
    busy = []
    for proto, addr, port in PORTS:
        kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((addr, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                busy.append(f"{port}/{proto}")
    if busy:
        raise LabError(
            f"port(s) {', '.join(busy)} already in use (another Asterisk or "
            "softphone?); see `ss -lunpt` and stop it, then `lab up` again"
        )


def asterisk_rx(paths: LabPaths, command: str, *, timeout: float = 30) -> str:
    """Run one Asterisk CLI command (``asterisk -rx``) in the chroot; its output."""
    return run(["chroot", str(paths.root), "/usr/sbin/asterisk", "-rx", command], timeout=timeout)


def pid(paths: LabPaths) -> int | None:
    """The running Asterisk's pid, from its pid file, if that process is alive."""
    pidfile = paths.root / "run/asterisk/asterisk.pid"
    try:
        value = int(pidfile.read_text().strip())
        comm = Path(f"/proc/{value}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return value if comm == "asterisk" else None  # a stale pid file must not kill others


def running(paths: LabPaths) -> bool:
    """Whether the lab's Asterisk is alive and answers on its control socket."""
    if pid(paths) is None:
        return False
    done = subprocess.run(
        ["chroot", str(paths.root), "/usr/sbin/asterisk", "-rx", "core show uptime"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return done.returncode == 0


def start(paths: LabPaths, *, boot_timeout_s: float = 60) -> None:
    """Start Asterisk (it daemonises) and wait until it is fully booted."""
    check_ports()
    (paths.root / "run/asterisk").mkdir(parents=True, exist_ok=True)
    env = {"PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    for name in ("IVR_AGI_HOST", "IVR_AGI_SERVICE"):  # read by extensions.conf with ENV()
        if name in os.environ:
            env[name] = os.environ[name]
    done = subprocess.run(
        ["chroot", str(paths.root), "/usr/sbin/asterisk", "-g"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise LabError(f"asterisk did not start: {done.stderr.strip()[-1500:]}")
    deadline = time.monotonic() + boot_timeout_s
    while True:
        probe = subprocess.run(
            ["chroot", str(paths.root), "/usr/sbin/asterisk", "-rx", "core waitfullybooted"],
            capture_output=True,
            text=True,
            timeout=boot_timeout_s,
            check=False,
        )
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            log = paths.root / "var/log/asterisk/messages.log"
            tail = log.read_text()[-1500:] if log.exists() else probe.stderr
            raise LabError(f"asterisk did not finish booting in {boot_timeout_s:.0f} s:\n{tail}")
        time.sleep(0.1)


def stop(paths: LabPaths, *, timeout_s: float = 15) -> None:
    """Stop Asterisk if it runs: `core stop now`, then SIGKILL to the pid we started."""
    proc = pid(paths)
    if proc is None:
        return
    subprocess.run(
        ["chroot", str(paths.root), "/usr/sbin/asterisk", "-rx", "core stop now"],
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid(paths) is None:
            return
        time.sleep(0.05)
    os.kill(proc, signal.SIGKILL)
