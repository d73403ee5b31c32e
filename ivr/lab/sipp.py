"""Place SIP calls into the lab's Asterisk with SIPp, and answer its calls: run, time, judge.

The UAC calls the loopback test endpoint (asterisk-conf/pjsip.conf ``[sipp]``, 127.0.0.1:5080,
no auth); the answerer listens on :data:`ANSWER_PORT`. The scenarios come from
:mod:`ivr.lab.sipp_scenarios`.
"""

from __future__ import annotations

import csv
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ivr.errors import LabError
from ivr.lab.dtmf_pcaps import digit_pcaps
from ivr.lab.host import run
from ivr.lab.sipp_scenarios import CallSpec, render_answer_scenario, render_scenario

TARGET = "127.0.0.1:5080"
ANSWER_PORT = 5090  # asterisk-conf/pjsip.conf: survey-line and callback-line ring here


@dataclass(frozen=True)
class CallResult:
    """SIPp's verdict on one call (or one answering run)."""

    ok: bool
    exit_code: int
    duration_s: float
    message: str
    scenario: Path
    errors: str = ""  # SIPp's error file, if any

    def __str__(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        return f"{verdict}: {self.message} ({self.duration_s:.1f} s)"


@dataclass(frozen=True)
class LoadResult:
    """What a load run offered and how many calls SIPp counted as passed."""

    ok: bool
    offered: int
    successful: int
    failed: int
    duration_s: float
    max_concurrent: int
    exit_code: int
    stats: dict[str, str] = field(default_factory=dict)  # SIPp's last statistics row

    def __str__(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        return (
            f"{verdict}: {self.successful}/{self.offered} calls succeeded, "
            f"{self.failed} failed, {self.max_concurrent} at most at once, "
            f"{self.duration_s:.1f} s"
        )


def to_alaw(wav: Path, workdir: Path) -> Path:
    """Convert any WAV to 8 kHz mono A-law, as SIPp's rtp_stream plays it (payload 8): raw
    samples, no header (SIPp plays a file's bytes as they are: a WAV header was played as
    a 7 ms click before and after the words)."""
    if not wav.exists():
        raise LabError(f"caller voice file {wav} does not exist")
    out = workdir / f"voice-{wav.stem}.al"
    run(["sox", str(wav), "-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw", str(out)])
    return out.resolve()


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port on 127.0.0.1 that is free now (for SIPp's -p and -mp)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _prepare(spec: CallSpec, workdir: Path, name: str) -> Path:
    if shutil.which("sipp") is None:
        raise LabError("sipp is not installed: apt-get install sip-tester")
    workdir.mkdir(parents=True, exist_ok=True)
    voice = to_alaw(spec.wav, workdir) if spec.wav else None
    scenario = workdir / f"{name}.xml"
    pcaps = digit_pcaps(spec.digits, workdir) if spec.digits else None
    scenario.write_text(render_scenario(spec, voice, pcaps))
    return scenario


def _sipp_cmd(
    spec: CallSpec, scenario: Path, *, calls: int, rate: float, limit: int, timeout_s: float
) -> list[str]:
    return [
        "sipp",
        TARGET,
        "-sf",
        str(scenario),
        "-s",
        spec.ext,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mp",
        str(free_port()),
        "-m",
        str(calls),
        "-r",
        f"{rate:g}",
        "-rp",
        "1000",
        "-l",
        str(limit),
        "-aa",
        "-nostdin",
        "-timeout",
        f"{timeout_s:.0f}s",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        str(scenario.with_suffix(".errors.log")),
        "-trace_stat",
        "-stf",
        str(scenario.with_suffix(".stat.csv")),
        "-fd",
        "1",
    ]


def _call_budget_s(spec: CallSpec) -> float:
    digits = spec.first_digit_after_s + len(spec.digits) * (spec.digit_gap_s + 0.5)
    return 10 + digits + spec.voice_after_s + spec.hold_s + (60 if spec.wav else 0)


def _read_errors(scenario: Path) -> str:
    path = scenario.with_suffix(".errors.log")
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _first_event(errors: str) -> str:
    """SIPp's first error event without timestamps, e.g. 'receive timeout on message ...'."""
    text = " ".join(errors.split())
    match = re.search(r"Call-Id: \S+, (.*?)(?:: aborting call|\d{4}-\d\d-\d\d |$)", text)
    return match.group(1) if match else text[:300]


def _cleanup(scenario: Path) -> None:
    for suffix in (".xml", ".stat.csv", ".errors.log"):
        scenario.with_suffix(suffix).unlink(missing_ok=True)


def call(spec: CallSpec, workdir: Path) -> CallResult:
    """Place one call and wait for it; ``ok`` is SIPp's verdict (exit 0, one call passed)."""
    scenario = _prepare(spec, workdir, f"call-{spec.ext}-{time.time_ns()}")
    budget = _call_budget_s(spec)
    cmd = _sipp_cmd(spec, scenario, calls=1, rate=1, limit=1, timeout_s=budget)
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 15, check=False)
    duration = time.monotonic() - started
    errors = _read_errors(scenario)
    if done.returncode == 0:
        message = f"call to {spec.ext} completed"
        _cleanup(scenario)  # kept only when the call failed, for the post-mortem
    else:
        reason = _first_event(errors) or done.stderr.strip() or done.stdout.strip()[-300:]
        message = f"call to {spec.ext} failed (sipp exit {done.returncode}): {reason[:500]}"
    return CallResult(done.returncode == 0, done.returncode, duration, message, scenario, errors)


def _stat_rows(path: Path) -> list[dict[str, str]]:
    """SIPp's -trace_stat rows (one a second with -fd 1, and a final one)."""
    if not path.exists():
        return []
    return list(csv.DictReader(path.read_text().splitlines(), delimiter=";"))


def load(
    spec: CallSpec, workdir: Path, *, calls: int, rate: float, max_concurrent: int
) -> LoadResult:
    """Offer ``calls`` calls at ``rate`` calls/s, at most ``max_concurrent`` at once."""
    scenario = _prepare(spec, workdir, f"load-{spec.ext}-{time.time_ns()}")
    budget = _call_budget_s(spec) + calls / rate * 2 + 30
    cmd = _sipp_cmd(spec, scenario, calls=calls, rate=rate, limit=max_concurrent, timeout_s=budget)
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 30, check=False)
    duration = time.monotonic() - started
    rows = _stat_rows(scenario.with_suffix(".stat.csv"))
    stats = dict(rows[-1]) if rows else {}
    ok_calls = int(stats.get("SuccessfulCall(C)", "0") or 0)
    failed = int(stats.get("FailedCall(C)", "0") or 0)
    peak = max((int(row.get("CurrentCall", "0") or 0) for row in rows), default=0)
    ok = done.returncode == 0 and ok_calls == calls
    return LoadResult(ok, calls, ok_calls, failed, duration, peak, done.returncode, stats)


# --- answering calls (callbacks, outbound surveys) -------------------------------------------


@dataclass
class Answerer:
    """A SIPp that answers calls on :data:`ANSWER_PORT` and presses digits (``start()``,
    then ``wait()``)."""

    digits: tuple[str, ...]
    workdir: Path
    calls: int = 1
    first_digit_after_s: float = 3.0
    gaps_s: tuple[float, ...] = ()
    timeout_s: float = 120.0
    _proc: subprocess.Popen[str] | None = None
    _scenario: Path | None = None

    def start(self) -> None:
        """Write the answering scenario and start SIPp in the background."""
        if shutil.which("sipp") is None:
            raise LabError("sipp is not installed: apt-get install sip-tester")
        self.workdir.mkdir(parents=True, exist_ok=True)
        pcaps = digit_pcaps(self.digits, self.workdir)
        scenario = render_answer_scenario(
            pcaps,
            first_digit_after_s=self.first_digit_after_s,
            gaps_s=self.gaps_s,
            timeout_s=self.timeout_s,
        )
        self._scenario = self.workdir / f"answer-{time.time_ns()}.xml"
        self._scenario.write_text(scenario)
        cmd = [
            "sipp",
            "-sf",
            str(self._scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(ANSWER_PORT),
            "-mp",
            str(free_port()),
            "-m",
            str(self.calls),
            "-nostdin",
            "-timeout",
            f"{self.timeout_s:.0f}s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(self._scenario.with_suffix(".errors.log")),
        ]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def wait(self, timeout_s: float | None = None) -> CallResult:
        """Wait until SIPp answered ``calls`` calls (or gave up); its verdict."""
        assert self._proc is not None and self._scenario is not None
        started = time.monotonic()
        try:
            out, _ = self._proc.communicate(timeout=timeout_s or self.timeout_s + 15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, _ = self._proc.communicate()
        errors = _read_errors(self._scenario)
        code = self._proc.returncode
        message = (
            "answered"
            if code == 0
            else f"answering failed (sipp exit {code}): {_first_event(errors) or out[-300:]}"
        )
        return CallResult(
            code == 0, code, time.monotonic() - started, message, self._scenario, errors
        )

    def stop(self) -> None:
        """Kill SIPp if it still runs."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
