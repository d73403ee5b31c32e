"""Asterisk 22 (Debian sid) in a chroot: build the tree once, cache it, mount into it.

The tree is built with debootstrap, cached as a zstd tarball outside git (a second ``up``
unpacks it in seconds) and gets ``prompts/`` bind-mounted read-only at
``/usr/share/asterisk/sounds/ivr``, and the lab's recordings directory read-write at its own
absolute path (what Asterisk records there, the server reads). The configuration goes in
with :mod:`ivr.lab.credentials`; Asterisk runs in it with :mod:`ivr.lab.asterisk_process`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ivr.errors import LabError
from ivr.lab.host import run
from ivr.lab.paths import PACKAGES, SOUNDS_SUBDIR, SUITE, LabPaths

SOURCES_FILES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def debian_mirror() -> str:
    """The host's Debian mirror URL (IVR_LAB_MIRROR wins), read from its apt sources."""
    if url := os.environ.get("IVR_LAB_MIRROR"):
        return url
    for path in SOURCES_FILES:
        if not path.exists():
            continue
        text = path.read_text()
        for match in re.finditer(r"^URIs:\s*(\S+)|^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M):
            url = match.group(1) or match.group(2)
            if "security" not in url:
                return url
    raise LabError(
        f"no Debian mirror found in {[str(p) for p in SOURCES_FILES]}; "
        "set IVR_LAB_MIRROR to the mirror URL"
    )


def mounted_under(root: Path) -> list[Path]:
    """Mount points at or below ``root`` (from /proc/self/mountinfo)."""
    prefix = str(root.resolve()) if root.exists() else str(root)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return found


def _remove_tree(root: Path) -> None:
    if mounted_under(root):
        # never rm -rf through a bind mount of prompts/
        raise LabError(f"{root} still has mounts {mounted_under(root)}; run `lab down` first")
    shutil.rmtree(root, ignore_errors=True)


def tree_ready(paths: LabPaths) -> bool:
    """Whether the chroot tree holds an installed Asterisk."""
    return (paths.root / "usr/sbin/asterisk").exists()


def build_tree(paths: LabPaths, *, rebuild: bool = False) -> str:
    """Make the chroot tree: reuse it, else unpack the cache, else debootstrap. Says which."""
    if rebuild:
        _remove_tree(paths.root)
        paths.tarball.unlink(missing_ok=True)
    if tree_ready(paths):
        return "reused"
    _remove_tree(paths.root)
    paths.root.mkdir(parents=True)
    if paths.tarball.exists():
        run(["tar", "-I", "zstd -T0", "-xpf", str(paths.tarball), "-C", str(paths.root)])
        return "unpacked cache"
    mirror = debian_mirror()
    cmd = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(paths.root),
        mirror,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        log = paths.root / "debootstrap/debootstrap.log"
        detail = log.read_text()[-1500:] if log.exists() else done.stderr[-1500:]
        _remove_tree(paths.root)
        raise LabError(
            f"debootstrap failed: is the Debian mirror {mirror} reachable and does "
            f"'{SUITE}' still ship {', '.join(PACKAGES)}? Log tail:\n{detail}"
        )
    for deb in (paths.root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    paths.cache.mkdir(parents=True, exist_ok=True)
    partial = paths.tarball.with_suffix(".partial")
    run(["tar", "-I", "zstd -T0 -3", "-cpf", str(partial), "-C", str(paths.root), "."], timeout=600)
    partial.rename(paths.tarball)
    return "built with debootstrap"


def is_mounted(point: Path) -> bool:
    """Whether something is mounted exactly at ``point``."""
    return point in mounted_under(point)


def mount_all(paths: LabPaths) -> None:
    """Mount /proc, /dev/pts, this checkout's prompts/ (read-only) and its recordings
    directory (read-write, at the same path) in the tree."""
    root = paths.root
    paths.prompts.mkdir(exist_ok=True)
    if not is_mounted(root / "proc"):
        run(["mount", "-t", "proc", "proc", str(root / "proc")])
    if not is_mounted(root / "dev/pts"):
        run(
            [
                "mount",
                "-t",
                "devpts",
                "-o",
                "newinstance,ptmxmode=0666",
                "devpts",
                str(root / "dev/pts"),
            ]
        )
    sounds = root / SOUNDS_SUBDIR
    if is_mounted(sounds) and not _same_dir(sounds, paths.prompts):
        # left over from another checkout (mounts outlive the processes of a session):
        # Asterisk would play that checkout's prompts and miss this one's
        _unmount(sounds)
    if not is_mounted(sounds):
        sounds.mkdir(parents=True, exist_ok=True)
        run(["mount", "--bind", str(paths.prompts), str(sounds)])
        run(["mount", "-o", "remount,bind,ro", str(sounds)])
    recordings = paths.mountpoints[0]
    if is_mounted(recordings) and not _same_dir(recordings, paths.recordings):
        _unmount(recordings)  # another checkout's (as for prompts/ above)
    if not is_mounted(recordings):
        paths.recordings.mkdir(parents=True, exist_ok=True)
        recordings.mkdir(parents=True, exist_ok=True)
        run(["mount", "--bind", str(paths.recordings.resolve()), str(recordings)])


def _same_dir(a: Path, b: Path) -> bool:
    sa, sb = a.stat(), b.stat()
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _unmount(point: Path) -> None:
    while is_mounted(point):  # a path can be stacked by repeated mounts
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            run(["umount", "-l", str(point)])


def unmount_all(paths: LabPaths) -> None:
    """Unmount everything :func:`mount_all` mounted, innermost first."""
    for point in paths.mountpoints:
        _unmount(point)
