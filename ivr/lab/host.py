"""The host side of the lab: running a command, needing root, installing missing tools."""

from __future__ import annotations

import os
import shutil
import subprocess

from ivr.errors import LabError

# host tool -> Debian package that provides it
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "sipp": "sip-tester",
    "sox": "sox",
    "espeak-ng": "espeak-ng",
    "zstd": "zstd",
}


def run(cmd: list[str], *, timeout: float = 120, check: bool = True) -> str:
    """Run a command, return stdout; raise LabError with its stderr on failure."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(cmd)!r} took longer than {timeout:.0f} s") from exc
    if check and done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise LabError(f"{' '.join(cmd)!r} exited {done.returncode}: {tail}")
    return done.stdout


def require_root() -> None:
    """Raise unless this process runs as root (debootstrap, chroot and mount need it)."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (debootstrap, chroot, mount): run it with sudo")


def ensure_host_tools(tools: tuple[str, ...] = tuple(HOST_TOOLS)) -> None:
    """apt-get install whatever of debootstrap/sipp/sox/espeak-ng/zstd is missing."""
    missing = sorted({HOST_TOOLS[t] for t in tools if shutil.which(t) is None})
    if not missing:
        return
    require_root()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", *missing]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise LabError(f"could not install {missing} with apt-get: {done.stderr[-1500:]}")
