#!/usr/bin/env python3
"""Record real FastAGI transcripts: a TCP proxy between Asterisk and ``ivr serve``.

The proxy listens where the dialplan connects (127.0.0.1:4573) and forwards every connection
to ``ivr serve`` on another port, writing each line in the order it passed through, in the
transcript format of ``tests/support/fixtures/agi/`` (``<< `` from Asterisk, ``>> `` from the
server, ``<<`` alone for the blank line ending the ``agi_*`` block). AGI is strictly one command, one
reply, so arrival order at the proxy is the order on the wire; a ``HANGUP`` line lands where
Asterisk sent it. When one side closes, the proxy closes the other, as a direct connection
would.

Re-record the fixtures (root, lab up, nothing on 4573)::

    .venv/bin/python scripts/record_agi.py fixtures

places the scripted calls of :data:`CALLS` through the lab's Asterisk (SIPp) into a temporary
``ivr serve`` behind the proxy and writes ``tests/support/fixtures/agi/recorded_<name>.txt``.
``record_agi.py proxy --upstream-port 4583 --out DIR`` runs the proxy alone (Ctrl-C stops it)
for ad-hoc captures with your own server and calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "support" / "fixtures" / "agi"
HEADER = (
    "# Recorded FastAGI transcript (REAL): Asterisk {version} in the chroot lab <-> ivr serve,\n"
    "# captured by scripts/record_agi.py on {date}. {what}\n"
    '# Format: "<< " + a line from Asterisk, ">> " + a line the server sends, "<<" alone =\n'
    "# blank line. Lines are in the order they crossed the wire; the socket closes at the end.\n"
)


@dataclass
class Transcript:
    """One proxied connection: its lines in wire order."""

    number: int
    lines: list[str] = field(default_factory=list)
    closed_by: str = ""  # "asterisk" or "server": who closed first
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for line in self.lines:
            if line == "<<":
                break
            key, _, value = line.removeprefix("<< ").partition(": ")
            env[key] = value
        return env

    def text(self, what: str) -> str:
        version = self.env().get("agi_version", "?")
        header = HEADER.format(version=version, date=time.strftime("%Y-%m-%d"), what=what)
        return header + "\n".join(self.lines) + "\n"


class RecordingProxy:
    """Listen on ``host:port``, forward to ``host:upstream_port``, record every connection."""

    def __init__(
        self,
        upstream_port: int,
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        out: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.upstream_port = upstream_port
        self.out = out  # if set, each transcript is also written there as it ends
        self.transcripts: list[Transcript] = []
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _on_connection(
        self, a_reader: asyncio.StreamReader, a_writer: asyncio.StreamWriter
    ) -> None:
        record = Transcript(next(self._numbers))
        self.transcripts.append(record)
        try:
            s_reader, s_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            a_writer.close()
            record.closed_by = "server"
            record.done.set()
            return
        header = [True]  # still inside the agi_* block (Asterisk side)

        async def pump(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tag: str, side: str
        ) -> None:
            while line := await reader.readline():
                text = line.decode("utf-8", errors="replace").rstrip("\r\n")
                if tag == "<<" and header[0] and not text:
                    header[0] = False
                    record.lines.append("<<")
                else:
                    record.lines.append(f"{tag} {text}")
                writer.write(line)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            record.closed_by = record.closed_by or side

        tasks = [
            asyncio.create_task(pump(a_reader, s_writer, "<<", "asterisk")),
            asyncio.create_task(pump(s_reader, a_writer, ">>", "server")),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # one side closed: close both, as the peer would see with a direct connection
            for writer in (a_writer, s_writer):
                writer.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.out is not None:
                self.out.mkdir(parents=True, exist_ok=True)
                path = self.out / f"agi-{record.number:03d}.txt"
                path.write_text(record.text("Ad-hoc capture."), encoding="utf-8")
            record.done.set()


# --------------------------------------------------------------------------- fixture calls
@dataclass(frozen=True)
class ScriptedCall:
    name: str  # the fixture becomes recorded_<name>.txt
    what: str  # one line for the file header
    ext: str
    digits: tuple[str, ...] = ()
    first_digit_after_s: float = 1.0
    digit_gap_s: float = 1.0
    hold_s: float = 30.0
    expect_hangup: bool = True
    gaps_s: tuple[float, ...] = ()


CALLS = (
    ScriptedCall(
        "main_menu_choice",
        "Ext 100 (flows/main.yaml): '2' pressed during the menu prompt (barge-in),\n"
        "# support, goodbye, then the server hangs up (HANGUP -> 200 result=1).",
        "100",
        digits=("2",),
        first_digit_after_s=4.0,
    ),
    ScriptedCall(
        "main_caller_hangup",
        "Ext 100: the caller hangs up (SIP BYE) 5 s into the call, while the menu prompt plays:\n"
        "# STREAM FILE answers -1, the server probes with NOOP, Asterisk sends HANGUP (then the\n"
        "# NOOP's reply) and the server closes the socket.",
        "100",
        hold_s=5.0,
        expect_hangup=False,
    ),
    ScriptedCall(
        "bank_agent_survey",
        "Ext 200 (flows/bank.yaml, flow clock pinned to a Monday 10:00 in Shanghai, AMI off):\n"
        "# '1' English, '0' agent: EXEC Queue default (a simulated agent answers and hangs up,\n"
        "# QUEUESTATUS=CONTINUE), then the in-call survey: '5', '1'.",
        "200",
        digits=("1", "0", "5", "1"),
        first_digit_after_s=3.0,
        gaps_s=(4.0, 9.0, 3.0),
    ),
)

BANK_OPEN_AT = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday


async def record_fixtures(out: Path, upstream_port: int = 4583) -> list[Path]:
    """Place :data:`CALLS` through the lab into a temporary ``ivr serve``; write fixtures."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from serve import BalanceStub, IvrServe  # tests/e2e/serve.py

    from ivr.lab import CallSpec, Lab, sipp

    lab = Lab()
    if not lab.status().running:
        raise SystemExit("the lab is not running: python -m ivr.lab up")
    stub = BalanceStub()
    stub.start()
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="record-agi-") as tmp:
        server = IvrServe(
            Path(tmp),
            http_base_url=stub.base_url,
            port=upstream_port,
            clock_at=BANK_OPEN_AT,
            name="record-agi-serve",
        )
        proxy = RecordingProxy(upstream_port)
        try:
            server.start()
            await proxy.start()
            for call in CALLS:
                before = len(proxy.transcripts)
                spec = CallSpec(
                    ext=call.ext,
                    digits=call.digits,
                    hold_s=call.hold_s,
                    expect_hangup=call.expect_hangup,
                    first_digit_after_s=call.first_digit_after_s,
                    digit_gap_s=call.digit_gap_s,
                    gaps_s=call.gaps_s,
                )
                result = await asyncio.to_thread(sipp.call, spec, lab.paths.state / "sipp")
                if not result.ok:
                    raise SystemExit(f"{call.name}: {result}")
                if len(proxy.transcripts) != before + 1:
                    raise SystemExit(
                        f"{call.name}: expected one AGI connection, got "
                        f"{len(proxy.transcripts) - before}"
                    )
                transcript = proxy.transcripts[-1]
                await asyncio.wait_for(transcript.done.wait(), 15)
                path = out / f"recorded_{call.name}.txt"
                path.write_text(transcript.text(call.what), encoding="utf-8")
                written.append(path)
                print(
                    f"{path.relative_to(ROOT)}: {len(transcript.lines)} lines, "
                    f"closed by {transcript.closed_by}"
                )
        finally:
            await proxy.close()
            server.stop()
            stub.stop()
    return written


async def _proxy_forever(upstream_port: int, port: int, out: Path) -> None:
    proxy = RecordingProxy(upstream_port, port=port, out=out)
    await proxy.start()
    print(f"recording 127.0.0.1:{port} -> 127.0.0.1:{upstream_port} into {out}")
    await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fx = sub.add_parser("fixtures", help="re-record tests/support/fixtures/agi/recorded_*.txt")
    fx.add_argument("--out", type=Path, default=FIXTURES)
    fx.add_argument(
        "--upstream-port",
        type=int,
        default=4583,
        help="where the temporary ivr serve listens (the proxy takes 4573)",
    )
    px = sub.add_parser("proxy", help="only run the recording proxy")
    px.add_argument("--port", type=int, default=4573)
    px.add_argument("--upstream-port", type=int, required=True)
    px.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "fixtures":
        asyncio.run(record_fixtures(args.out, args.upstream_port))
        print("now check them: .venv/bin/pytest -q tests/integration/test_agi_recorded.py")
    else:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_proxy_forever(args.upstream_port, args.port, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
