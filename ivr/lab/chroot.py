"""Asterisk 22 (Debian sid) in a chroot: build once, cache, start, stop.

The tree is built with debootstrap, cached as a zstd tarball outside git (a second ``up``
unpacks it in seconds), gets the project's ``asterisk-conf/`` copied into ``/etc/asterisk``
and ``prompts/`` bind-mounted read-only at ``/usr/share/asterisk/sounds/ivr``. A chroot shares
the host's network, so FastAGI (4573), AudioSocket (4574) and AMI (5038) are all on 127.0.0.1.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import LabError

SUITE = "sid"
PACKAGES = ("asterisk", "asterisk-modules", "asterisk-core-sounds-en")
# host tool -> Debian package that provides it
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "sipp": "sip-tester",
    "sox": "sox",
    "espeak-ng": "espeak-ng",
    "zstd": "zstd",
}
SOUNDS_SUBDIR = "usr/share/asterisk/sounds/ivr"  # STREAM FILE ivr/... -> prompts/...
# (protocol, address, port): what the lab's Asterisk binds (see asterisk-conf/)
PORTS = (("udp", "0.0.0.0", 5060), ("udp", "127.0.0.1", 5080), ("tcp", "127.0.0.1", 5038))
REPO = Path(__file__).resolve().parents[2]
SOURCES_FILES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
CHROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class LabPaths:
    """Where the lab keeps things. Defaults can be moved with IVR_LAB_* variables."""

    repo: Path
    root: Path  # the chroot tree (outside the work tree: `git clean` never meets mounts)
    cache: Path  # the zstd tarball of a freshly built tree
    state: Path  # generated secrets, SIPp scenarios and logs (git-ignored .lab/)

    @classmethod
    def default(cls, repo: Path = REPO) -> LabPaths:
        env = os.environ.get
        return cls(
            repo=repo,
            root=Path(env("IVR_LAB_ROOT", "/var/lib/ivr-lab/root")),
            cache=Path(env("IVR_LAB_CACHE", "/var/cache/ivr-lab")),
            state=Path(env("IVR_LAB_STATE", str(repo / ".lab"))),
        )

    @property
    def conf(self) -> Path:
        return self.repo / "asterisk-conf"

    @property
    def prompts(self) -> Path:
        return self.repo / "prompts"

    @property
    def tarball(self) -> Path:
        key = hashlib.sha256(" ".join((SUITE, *PACKAGES)).encode()).hexdigest()[:10]
        return self.cache / f"asterisk-{SUITE}-{key}.tar.zst"

    @property
    def mountpoints(self) -> tuple[Path, ...]:
        """Innermost first: the unmount order."""
        return (self.root / SOUNDS_SUBDIR, self.root / "dev/pts", self.root / "proc")


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


SECRETS_FILE = "secrets.env"  # in LabPaths.state, mode 0600
LEGACY_AMI_SECRET = "ami-secret"  # the lab's AMI secret before secrets.env held it
_INCLUDE = re.compile(r'^#include\s+"secrets/([^"]+)\.conf"', re.M)


@dataclass(frozen=True)
class SecretSpec:
    """One ``#include "secrets/<name>.conf"`` of asterisk-conf/: the file Asterisk reads,
    the option it holds and the variable that holds its value."""

    name: str  # e.g. sip-1001 (file secrets/sip-1001.conf)
    option: str  # "password" (pjsip auth) or "secret" (manager user)
    env_var: str  # IVR_SIP_1001_PASSWORD, IVR_AMI_SECRET


def secret_specs(conf_dir: Path) -> list[SecretSpec]:
    """Every secret the configuration #includes: ``ami-<user>`` (manager.conf) and
    ``sip-<user>`` (pjsip.conf auth sections)."""
    specs: dict[str, SecretSpec] = {}
    for conf in sorted(conf_dir.glob("*.conf")):
        for name in _INCLUDE.findall(conf.read_text()):
            if name.startswith("ami-"):
                spec = SecretSpec(name, "secret", "IVR_AMI_SECRET")
            elif name.startswith("sip-"):
                user = re.sub(r"\W", "_", name.removeprefix("sip-")).upper()
                spec = SecretSpec(name, "password", f"IVR_SIP_{user}_PASSWORD")
            else:
                raise LabError(f"{conf.name}: no rule for secrets/{name}.conf (ami-*, sip-*)")
            specs[name] = spec
    return list(specs.values())


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


def ensure_secrets(paths: LabPaths) -> tuple[Path, list[str]]:
    """The lab's generated secrets file (state/secrets.env, mode 0600), with a random value
    for every variable the configuration needs; returns it and the variables added now.

    Generated once: later starts reuse the values (a phone keeps its password, a running
    ``ivr serve`` its AMI login). An AMI secret from before this file is carried over."""
    path = paths.state / SECRETS_FILE
    values = _read_env_file(path) if path.exists() else {}
    legacy = paths.state / LEGACY_AMI_SECRET
    if "IVR_AMI_SECRET" not in values and legacy.exists():
        values["IVR_AMI_SECRET"] = legacy.read_text().strip()
    added = [spec.env_var for spec in secret_specs(paths.conf) if spec.env_var not in values]
    for var in added:
        values[var] = secrets.token_hex(16)  # 128 bits; hex: safe in any config or shell
    if added or not path.exists() or path.stat().st_mode & 0o077:
        paths.state.mkdir(parents=True, exist_ok=True)
        text = (
            "# ivr lab: random secrets, generated at the first `ivr lab up` and kept for\n"
            "# the next ones (delete this file to get new ones; a variable of the same\n"
            "# name in the environment wins). A softphone registers as <user> with the\n"
            "# password IVR_SIP_<user>_PASSWORD, server <this host>:5060, UDP.\n"
            + "".join(f"{key}={value}\n" for key, value in values.items())
        )
        partial = path.with_name(path.name + ".partial")
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        partial.rename(path)
    legacy.unlink(missing_ok=True)
    return path, added


def secret(paths: LabPaths, env_var: str) -> str:
    """A secret of the lab: the environment's value, else the generated one."""
    if value := os.environ.get(env_var):
        return value
    path, _ = ensure_secrets(paths)
    values = _read_env_file(path)
    if env_var not in values:
        raise LabError(f"{env_var} is not a secret of asterisk-conf/ (see {path})")
    return values[env_var]


def install_config(paths: LabPaths) -> None:
    """Replace the stock /etc/asterisk with asterisk-conf/*.conf plus the secrets files."""
    etc = paths.root / "etc/asterisk"
    shutil.rmtree(etc, ignore_errors=True)
    (etc / "secrets").mkdir(parents=True, mode=0o700)
    for conf in sorted(paths.conf.glob("*.conf")):
        shutil.copy2(conf, etc / conf.name)
    ensure_secrets(paths)
    for spec in secret_specs(paths.conf):
        target = etc / "secrets" / f"{spec.name}.conf"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"{spec.option} = {secret(paths, spec.env_var)}\n")


def is_mounted(point: Path) -> bool:
    return point in mounted_under(point)


def mount_all(paths: LabPaths) -> None:
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


def _same_dir(a: Path, b: Path) -> bool:
    sa, sb = a.stat(), b.stat()
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _unmount(point: Path) -> None:
    while is_mounted(point):  # a path can be stacked by repeated mounts
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            run(["umount", "-l", str(point)])


def unmount_all(paths: LabPaths) -> None:
    for point in paths.mountpoints:
        _unmount(point)


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
    for name in ("IVR_AGI_HOST",):  # read by extensions.conf with ENV()
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
