"""A throw-away PostgreSQL server for tests: Debian's ``postgresql`` package, started in a
temporary directory on a free loopback port, torn down after.

``initdb`` refuses to run as root, so as root (CI) the server runs as the ``postgres`` user
(``runuser``) in a directory it owns; as anyone else it runs as that user. Clients log in as
``ivr`` with a generated password over TCP (``scram-sha-256``): the store reads its password
from the environment like in production, never from the URL.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "ivr"


def bin_dir() -> Path:
    """The newest installed PostgreSQL's programs (``/usr/lib/postgresql/<n>/bin``)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed (Debian package postgresql): run `make deps`"
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory; :meth:`start`, :meth:`stop`."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.port = _free_port()
        self.password = secrets.token_hex(16)
        self.root = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
        self.data = self.root / "data"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        return subprocess.run(
            [*prefix, *args], capture_output=True, text=True, check=check, timeout=120
        )

    def start(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
            "-A", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
            "-l", str(self.root / "log"), "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=200",
            "start",
        )  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        """The connection URL (no password: that comes from the environment)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with ``psql``; its output."""
        env = {**os.environ, "PGPASSWORD": self.password}
        out = subprocess.run(
            [
                str(self.bin / "psql"),
                "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database,
                "-v", "ON_ERROR_STOP=1", "-qAtc", statement,
            ],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"psql {statement!r}: {out.stderr.strip()}")
        return out.stdout

    def restart(self) -> None:
        """Stop (fast: connections are cut) and start again on the same port."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
            "-l", str(self.root / "log"), "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=200",
            "start",
        )  # fmt: skip

    def stop(self) -> None:
        if self.data.exists():
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "immediate", "stop",
                check=False,
            )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.root / "log").read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float = 30) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            out = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if out.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not get ready:\n{self.log_tail()}")
