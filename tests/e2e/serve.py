"""Run the real ``ivr serve`` as a subprocess for end-to-end tests, plus a balance API stub.

:class:`IvrServe` writes a throw-away configuration (store in a temp dir, FastAGI on
127.0.0.1:4573, the repository's ``flows/`` and ``prompts/``), starts the server, waits until
its port accepts connections and keeps its log (stderr) as a test artefact under
``artifacts/e2e/``. Missing text prompts are rendered by ``ivr serve`` itself at start-up.

The bank flow is only open on weekdays in Shanghai, so the server can be started with a pinned
*flow clock*: this file is then run as a script (``python serve.py --clock-at ISO --config F``),
which shifts the clock the flow interpreter sees (``Services.clock``) so that it reads ``ISO``
at start-up and then runs at real speed, and hands over to ``ivr.cli.main(["serve", ...])``
unchanged. Logs, timeouts and Asterisk keep the real time; records' timestamps use the shifted
clock.

:class:`BalanceStub` answers ``GET /accounts/12345678/balance`` with
``{"available": "1234.50"}`` (404 for any other account) from a background thread.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
AGI_HOST = "127.0.0.1"
AGI_PORT = 4573  # the port asterisk-conf/extensions.conf dials
ACCOUNT = "12345678"
BALANCE = "1234.50"


class ServeError(RuntimeError):
    """``ivr serve`` did not come up (the message holds the tail of its log)."""


def port_accepts(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class IvrServe:
    """``ivr serve`` as a child process. ``start()``, then ``stop()`` (or use ``with``)."""

    def __init__(
        self,
        workdir: Path,
        *,
        http_base_url: str,
        port: int = AGI_PORT,
        clock_at: datetime | None = None,
        log_level: str = "DEBUG",
        artifacts: Path = ARTIFACTS,
        name: str = "ivr-serve",
        ami_secret: str | None = None,
        flows_dir: Path = ROOT / "flows",
        agi: dict[str, object] | None = None,
        host: str = AGI_HOST,
        settings: dict[str, object] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.settings = settings or {}  # more of ivr.yaml (e.g. store, node_id)
        self.env = env or {}
        self.ami_secret = ami_secret
        self.agi = agi or {}
        self.flows_dir = flows_dir
        self.workdir = workdir
        self.port = port
        self.http_base_url = http_base_url
        self.clock_at = clock_at
        self.log_level = log_level
        self.db_path = workdir / "calls.sqlite3"
        self.config_path = workdir / "ivr.yaml"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.log_path = artifacts / f"{name}-{stamp}-{os.getpid()}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def config(self) -> dict[str, object]:
        return {
            "flows_dir": str(self.flows_dir),
            "prompts_dir": str(ROOT / "prompts"),
            "log_level": self.log_level,
            "agi": {"host": self.host, "port": self.port, **self.agi},
            "http": {"base_url": self.http_base_url, "timeout_s": 2},
            "store": {"path": str(self.db_path)},
            "admin": {"port": 0},  # never the 8080 of another server
            **self.settings,
        }

    def command(self) -> list[str]:
        if self.clock_at is None:  # the console script itself
            return [sys.executable, "-m", "ivr", "serve", "--config", str(self.config_path)]
        return [
            sys.executable,
            str(Path(__file__).resolve()),
            "--clock-at",
            self.clock_at.isoformat(),
            "--config",
            str(self.config_path),
        ]

    def start(self, timeout_s: float = 240) -> None:
        """Start and wait until FastAGI accepts (start-up may render prompts first)."""
        if port_accepts(self.host, self.port):
            raise ServeError(f"something already listens on {self.host}:{self.port}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config()), encoding="utf-8")
        env = {
            k: v
            for k, v in os.environ.items()  # the test clock shift passes through
            if not k.startswith("IVR_") or k.startswith("IVR_TEST_")
        }
        if self.ami_secret is not None:
            env["IVR_AMI_SECRET"] = self.ami_secret
        env.update(self.env)
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                self.command(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while not port_accepts(self.host, self.port):
            if self._proc.poll() is not None:
                raise ServeError(
                    f"ivr serve exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServeError(
                    f"ivr serve did not listen on {self.port} within "
                    f"{timeout_s} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        """The running ``ivr serve`` process."""
        assert self._proc is not None, "ivr serve is not running"
        return self._proc.pid

    def stop(self, timeout_s: float = 20) -> int | None:
        """SIGTERM (the server lets calls finish), SIGKILL after ``timeout_s``; exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL, as an OOM kill or a crash would stop it: nothing runs on the way out."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
            self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_text(self, since: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as fh:
            fh.seek(since)
            return fh.read().decode(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, needle: str, *, since: int = 0, timeout_s: float = 10) -> str:
        """The first log line after byte ``since`` containing ``needle`` (waits for it)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self.log_text(since).splitlines():
                if needle in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in {self.log_path} within {timeout_s} s")
            time.sleep(0.1)

    def __enter__(self) -> IvrServe:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serving(self) -> Iterator[IvrServe]:
        """For a fixture: start, hand the server over, stop; a server that did not exit
        cleanly fails the test session's teardown with its log's path."""
        self.start()
        try:
            yield self
        finally:
            code = self.stop()
            if code not in (0, None):
                raise AssertionError(f"ivr serve exited with {code}; log: {self.log_path}")


class BalanceStub:
    """A tiny aiohttp server on 127.0.0.1 (a free port) in its own thread and event loop."""

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> None:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._serve(ready))
            except BaseException as exc:  # reported by start()
                errors.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="balance-stub", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors or not self.base_url:
            raise RuntimeError(f"balance stub did not start: {errors}")

    async def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web

        async def balance(request: web.Request) -> web.Response:
            self.requests.append(request.path)
            if request.match_info["account"] != ACCOUNT:
                return web.json_response({"error": "no such account"}, status=404)
            return web.json_response({"available": BALANCE})

        app = web.Application()
        app.router.add_get("/accounts/{account}/balance", balance)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = self._thread = self._stop = None


def _pin_flow_clock(at: datetime) -> None:
    """Make the server's clock (flows, records, outbound hours) read ``at`` now, running at
    real speed."""
    from ivr.app.server import App

    offset = at.timestamp() - time.time()
    App.clock = staticmethod(lambda: time.time() + offset)  # type: ignore[assignment]


def main(argv: Sequence[str] | None = None) -> int:
    """``serve.py [--clock-at ISO] --config FILE``: ``ivr serve`` with a pinned flow clock."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--clock-at", type=datetime.fromisoformat)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    if args.clock_at is not None:
        _pin_flow_clock(args.clock_at)
    from ivr.cli import main as ivr_main

    return ivr_main(["serve", "--config", args.config])


if __name__ == "__main__":
    sys.exit(main())
