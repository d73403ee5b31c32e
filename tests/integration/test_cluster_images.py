"""What the cluster profile's own images run, run here outside a container.

dnsmasq with docker/dns-cluster.conf answers the SRV and host records Asterisk looks up for
hagi://; docker/postgres-entrypoint.sh makes the ivr role and database with the password
of the compose secret, on Debian's PostgreSQL as in its image.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support.compose_file import REPO, load_compose
from support.dns_query import a_records, srv_records
from support.postgres import bin_dir

from ivr.config import load_settings

NODES = ("ivr-1", "ivr-2")
ENTRYPOINT = REPO / "docker/postgres-entrypoint.sh"


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dns_port() -> int:
    """A port free for UDP and TCP both: dnsmasq listens on the two (a UDP-only check let it
    meet a TCP socket on the same number: "Address already in use")."""
    while True:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
        ):
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


@pytest.fixture
def dnsmasq() -> Iterator[tuple[str, int]]:
    binary = shutil.which("dnsmasq") or shutil.which("/usr/sbin/dnsmasq")
    if binary is None:
        pytest.fail("dnsmasq is not installed: apt-get install dnsmasq-base")
    port = _dns_port()
    server = ("127.0.0.1", port)
    proc = subprocess.Popen(
        [binary, "--keep-in-foreground", f"--conf-file={REPO / 'docker/dns-cluster.conf'}",
         f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                a_records(server, "ivr-1")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dnsmasq did not answer: {proc.communicate()[0]}")
                time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        proc.wait(10)


def test_dnsmasq_answers_what_asterisk_looks_up(dnsmasq: tuple[str, int]) -> None:
    services = load_compose()["services"]
    service = services["cluster-asterisk"]["environment"]["IVR_AGI_SERVICE"]
    srv = f"_agi._tcp.{service}"
    assert sorted(srv_records(dnsmasq, srv)) == [
        (10, 50, 4573, f"{node}.{service}") for node in NODES
    ]
    for node in NODES:
        address = services[node]["networks"]["cluster"]["ipv4_address"]
        assert a_records(dnsmasq, f"{node}.{service}") == [address]  # the SRV target
        assert a_records(dnsmasq, node) == [address]  # AudioSocket's advertised host
    assert a_records(dnsmasq, f"ivr-3.{service}") == []  # the domain is answered here only
    # Asterisk tries the first record of a priority: the order rotates, so calls spread
    first = Counter(srv_records(dnsmasq, srv)[0][3] for _ in range(20))
    assert set(first) == {f"{node}.{service}" for node in NODES}
    assert min(first.values()) >= 5, first


class _Entrypoint:
    """docker/postgres-entrypoint.sh in a temporary directory the postgres user can reach."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ivr-pg-entry-"))
        self.root.chmod(0o755)
        self.secret = self.root / "postgres-password"
        self.port = _free_port(socket.SOCK_STREAM)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "PG"))},
            "PGDATA": str(self.root / "data"),
            "IVR_STORE_PASSWORD_FILE": str(self.secret),
            "PG_BIN": str(bin_dir()),
            "IVR_PG_SOCKET_DIR": str(self.root / "sockets"),
            "PGPORT": str(self.port),
            "IVR_PG_LISTEN": "127.0.0.1",
        }
        self.proc: subprocess.Popen[str] | None = None

    def start(self, password_file_text: str) -> None:
        self.secret.write_text(password_file_text)
        self.secret.chmod(0o600)
        self.proc = subprocess.Popen(
            ["sh", str(ENTRYPOINT)], env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            if self._accepts_logins():
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the entrypoint did not start PostgreSQL: {self.stop()}")
            time.sleep(0.1)

    def _accepts_logins(self) -> bool:
        """Listening is not enough: a server still starting up refuses every login."""
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", self.port)) != 0:
                return False
        try:
            self.connect("postgres", "").close()
        except psycopg.OperationalError as exc:
            return "starting up" not in str(exc)
        return True

    def stop(self) -> str:
        """SIGINT, as compose's stop_signal (fast shutdown); the entrypoint's output."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # exec'd: this is postgres itself
        out, _ = self.proc.communicate(timeout=60)
        return out

    def connect(self, user: str, password: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=user, password=password, dbname="ivr",
            connect_timeout=10,
        )  # fmt: skip

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def entrypoint() -> Iterator[_Entrypoint]:
    e = _Entrypoint()
    try:
        yield e
    finally:
        e.cleanup()


def test_postgres_entrypoint_sets_up_the_ivr_role_from_the_secret(
    entrypoint: _Entrypoint,
) -> None:
    missing = subprocess.run(
        ["sh", str(ENTRYPOINT)], env=entrypoint.env, capture_output=True, text=True, timeout=30
    )
    assert missing.returncode != 0 and "openssl rand" in missing.stderr  # says how to make it
    entrypoint.start("  first-password \n")
    # the password as the ivr nodes read the same file (surrounding whitespace dropped)
    env = {"IVR_STORE_PASSWORD_FILE": str(entrypoint.secret)}
    password = load_settings(None, env).store.revealed_password()
    assert password == "first-password"
    with entrypoint.connect("ivr", password) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), rolsuper FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone()
        assert row == ("ivr", "ivr", False)  # owns its database, nothing more
        conn.execute("CREATE TABLE kept (n int)")
    for user, wrong in (("ivr", "nope"), ("postgres", password), ("postgres", "")):
        with pytest.raises(psycopg.OperationalError):
            entrypoint.connect(user, wrong).close()
    first = entrypoint.stop()
    assert "created the database cluster" in first
    # a new secret takes effect at the next start; the cluster and its data stay
    entrypoint.start("second-password\n")
    with pytest.raises(psycopg.OperationalError):
        entrypoint.connect("ivr", "first-password").close()
    with entrypoint.connect("ivr", "second-password") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("ivr",)
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    again = entrypoint.stop()
    assert "created the database cluster" not in again
    hba = (entrypoint.root / "data/pg_hba.conf").read_text()
    assert hba.count("host ivr ivr samenet scram-sha-256") == 1
    rules = [line.split() for line in hba.splitlines() if line.strip()[:1] not in ("#", "")]
    assert {rule[-1] for rule in rules} == {"peer", "scram-sha-256"}  # nothing trusted
