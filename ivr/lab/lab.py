"""The ``Lab``: one object for tests and the CLI to drive the chroot Asterisk and SIPp."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.errors import LabError
from ivr.lab import asterisk_process, chroot, credentials, host, sipp
from ivr.lab.paths import LabPaths
from ivr.lab.sipp import CallResult, LoadResult
from ivr.lab.sipp_scenarios import CallSpec


@dataclass(frozen=True)
class LabStatus:
    tree: bool  # the chroot tree exists
    cached: bool  # the zstd tarball exists
    running: bool  # Asterisk answers on its control socket
    mounts: tuple[Path, ...]
    paths: LabPaths

    def __str__(self) -> str:
        lines = [
            f"asterisk: {'running' if self.running else 'stopped'}",
            f"tree:     {self.paths.root} ({'present' if self.tree else 'absent'})",
            f"cache:    {self.paths.tarball} ({'present' if self.cached else 'absent'})",
            f"mounts:   {', '.join(map(str, self.mounts)) or 'none'}",
            f"state:    {self.paths.state}",
            f"secrets:  {self.paths.state / credentials.SECRETS_FILE} (SIP passwords, AMI secret;"
            " root only)",
        ]
        return "\n".join(lines)


class Lab:
    """A real Asterisk 22 in a chroot on this host, plus SIPp to call it.

    >>> lab = Lab(); lab.up(); lab.call("100", digits="1").ok; lab.down()
    """

    def __init__(self, paths: LabPaths | None = None) -> None:
        self.paths = paths or LabPaths.default()

    @property
    def ami_secret(self) -> str:
        """The AMI secret of user ``ivr`` (IVR_AMI_SECRET or the generated one)."""
        return credentials.secret(self.paths, "IVR_AMI_SECRET")

    @property
    def secrets_file(self) -> Path:
        """The generated SIP passwords and AMI secret (mode 0600, made by ``up``)."""
        return self.paths.state / credentials.SECRETS_FILE

    def up(self, *, rebuild: bool = False) -> str:
        """Build or reuse the tree, install config, mount, start Asterisk. Idempotent.

        Returns how the tree was obtained; on a running lab it reloads asterisk-conf/.
        """
        host.require_root()
        if asterisk_process.running(self.paths):
            credentials.install_config(self.paths)  # pick up edits to asterisk-conf/
            chroot.mount_all(self.paths)  # and serve this checkout's prompts/
            asterisk_process.asterisk_rx(self.paths, "core reload")
            return "already running, config reloaded"
        asterisk_process.check_ports()  # before a minute of debootstrap, not after
        host.ensure_host_tools()
        how = chroot.build_tree(self.paths, rebuild=rebuild)
        credentials.install_config(self.paths)
        chroot.mount_all(self.paths)
        try:
            asterisk_process.start(self.paths)
        except LabError:
            asterisk_process.stop(self.paths)
            chroot.unmount_all(self.paths)
            raise
        return how

    def down(self) -> None:
        """Stop Asterisk and unmount everything. Idempotent."""
        host.require_root()
        asterisk_process.stop(self.paths)
        chroot.unmount_all(self.paths)

    def status(self) -> LabStatus:
        return LabStatus(
            tree=chroot.tree_ready(self.paths),
            cached=self.paths.tarball.exists(),
            running=asterisk_process.running(self.paths),
            mounts=tuple(chroot.mounted_under(self.paths.root)),
            paths=self.paths,
        )

    def cli(self, command: str, *, timeout_s: float = 30) -> str:
        """Run an Asterisk CLI command (``asterisk -rx``) and return its output."""
        if not asterisk_process.running(self.paths):
            raise LabError("asterisk is not running: `python -m ivr.lab up` first")
        return asterisk_process.asterisk_rx(self.paths, command, timeout=timeout_s)

    def log_path(self, name: str = "messages.log") -> Path:
        """A file in the chroot's /var/log/asterisk (messages.log, queue_log)."""
        return self.paths.root / "var/log/asterisk" / name

    def call(
        self,
        ext: str,
        *,
        digits: str | list[str] | tuple[str, ...] = (),
        wav: Path | str | None = None,
        **timing: Any,
    ) -> CallResult:
        """One SIPp call to ``ext``; digits as "1,2", "12" or a list; blocks until done.

        ``timing``: any other :class:`CallSpec` field (``hold_s``, ``expect_hangup``,
        ``first_digit_after_s``, ``digit_gap_s``, ``voice_after_s``, ``caller``...)."""
        return sipp.call(self._spec(ext, digits, wav, timing), self.paths.state / "sipp")

    def load(
        self,
        ext: str,
        *,
        calls: int,
        rate: float,
        max_concurrent: int,
        digits: str | list[str] | tuple[str, ...] = (),
        **timing: Any,
    ) -> LoadResult:
        """``calls`` concurrent-capable calls at ``rate``/s (SIPp -m/-r/-l), for benchmarks."""
        return sipp.load(
            self._spec(ext, digits, None, timing),
            self.paths.state / "sipp",
            calls=calls,
            rate=rate,
            max_concurrent=max_concurrent,
        )

    def wait_for_log(
        self, needle: str, *, name: str = "messages.log", timeout_s: float = 10, since: int = 0
    ) -> str:
        """Wait until ``needle`` appears in a log after byte offset ``since``; return the line."""
        deadline = time.monotonic() + timeout_s
        path = self.log_path(name)
        while True:
            if path.exists():
                with path.open("rb") as fh:
                    fh.seek(since)
                    for line in fh.read().decode(errors="replace").splitlines():
                        if needle in line:
                            return line
            if time.monotonic() > deadline:
                raise LabError(f"{needle!r} did not appear in {path} within {timeout_s} s")
            time.sleep(0.1)

    def log_size(self, name: str = "messages.log") -> int:
        path = self.log_path(name)
        return path.stat().st_size if path.exists() else 0

    @staticmethod
    def _spec(
        ext: str,
        digits: str | list[str] | tuple[str, ...],
        wav: Path | str | None,
        timing: dict[str, Any],
    ) -> CallSpec:
        if isinstance(digits, str):
            digits = [d for d in digits.replace(",", "").replace(" ", "")]
        return CallSpec(ext=ext, digits=tuple(digits), wav=Path(wav) if wav else None, **timing)
