"""Place SIP calls into the lab's Asterisk with SIPp: RFC 2833 digits, caller voice, load.

Each call gets a generated scenario (SIPp cannot substitute fields inside ``rtp_stream`` or
``play_pcap_audio``, so the paths are written into the file). The UAC calls the loopback test
endpoint (asterisk-conf/pjsip.conf ``[sipp]``, 127.0.0.1:5080, no auth).
"""

from __future__ import annotations

import csv
import re
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ivr.errors import LabError
from ivr.lab.chroot import run

PCAP_DIR = Path("/usr/share/sip-tester")
TARGET = "127.0.0.1:5080"
DIGIT_NAMES = {"*": "star", "#": "pound", **{str(d): str(d) for d in range(10)}}


@dataclass(frozen=True)
class CallSpec:
    """What one SIPp call does after the 200 OK, in order."""

    ext: str
    digits: tuple[str, ...] = ()
    wav: Path | None = None  # caller's voice, any format sox reads
    hold_s: float = 3.0  # time on the line after digits/voice (or the wait for Asterisk's BYE)
    expect_hangup: bool = False  # Asterisk must hang up within hold_s (else SIPp sends BYE)
    first_digit_after_s: float = 1.0
    digit_gap_s: float = 1.0  # silence between digits (the same digit twice needs it)
    gaps_s: tuple[float, ...] = ()  # per-digit gaps (after digit 1, 2, ...), else digit_gap_s
    caller: str = "sipp"  # the From user: Asterisk's caller id number
    voice_after_s: float = 0.5

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\+?[A-Za-z0-9]{1,32}", self.caller):
            raise LabError(f"caller {self.caller!r}: use letters and digits only")
        for digit in self.digits:
            if digit not in DIGIT_NAMES:
                raise LabError(f"digit {digit!r} has no RFC 2833 pcap; use 0-9, * or #")


@dataclass(frozen=True)
class CallResult:
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


INVITE = """\
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "ivr-lab" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Subject: ivr-lab
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=ivrlab 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [MEDIA_PORT] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
      a=sendrecv
"""

ACK = """\
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "ivr-lab" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
"""

BYE = ACK.replace("ACK sip", "BYE sip").replace("CSeq: 1 ACK", "CSeq: 2 BYE")

OK_TO_BYE = """\
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Content-Length: 0
"""


def _send(msg: str, retrans: bool = False) -> str:
    attr = ' retrans="500"' if retrans else ""
    return f"  <send{attr}>\n    <![CDATA[\n{msg}\n    ]]>\n  </send>\n"


def _pause(seconds: float) -> str:
    return f'  <pause milliseconds="{round(seconds * 1000)}"/>\n'


def _exec(attr: str, value: str) -> str:
    return f'  <nop><action><exec {attr}="{value}"/></action></nop>\n'


def _stock_pcaps(digits: tuple[str, ...]) -> list[Path]:
    return [PCAP_DIR / f"dtmf_2833_{DIGIT_NAMES[d]}.pcap" for d in digits]


def digit_pcaps(digits: tuple[str, ...], workdir: Path) -> list[Path]:
    """SIPp's RFC 2833 pcaps for ``digits``, rewritten so RTP sequence numbers and
    timestamps only grow from one digit to the next.

    The stock files each carry their own timestamps, and Asterisk drops a telephone-event
    older than the last one it saw: "5" then "1" would lose the "1"."""
    out = []
    for i, (digit, stock) in enumerate(zip(digits, _stock_pcaps(digits), strict=True)):
        path = workdir / f"dtmf-{i:02d}-{DIGIT_NAMES[digit]}.pcap"
        if not path.exists():
            path.write_bytes(
                _shift_rtp(stock.read_bytes(), seq=1000 * (i + 1), timestamp=160_000 * (i + 1))
            )
        out.append(path.resolve())
    return out


def _shift_rtp(pcap: bytes, *, seq: int, timestamp: int) -> bytes:
    """A copy of a libpcap file of RTP/UDP/IPv4 packets, renumbered from ``seq`` and with
    timestamps moved to start at ``timestamp`` (UDP checksums cleared: optional in IPv4)."""
    link = struct.unpack_from("<I", pcap, 20)[0]
    l2 = {1: 14, 113: 16}.get(link)
    if l2 is None or struct.unpack_from("<I", pcap, 0)[0] != 0xA1B2C3D4:
        raise LabError(f"unexpected pcap format (link type {link})")
    data = bytearray(pcap)
    offset, first_seq, first_ts = 24, None, None
    while offset + 16 <= len(data):
        incl = struct.unpack_from("<I", data, offset + 8)[0]
        ip = offset + 16 + l2
        udp = ip + (data[ip] & 0x0F) * 4
        rtp = udp + 8
        old_seq, old_ts = struct.unpack_from(">HI", data, rtp + 2)
        first_seq = old_seq if first_seq is None else first_seq
        first_ts = old_ts if first_ts is None else first_ts
        struct.pack_into(
            ">HI",
            data,
            rtp + 2,
            (seq + old_seq - first_seq) & 0xFFFF,
            (timestamp + old_ts - first_ts) & 0xFFFFFFFF,
        )
        struct.pack_into(">H", data, udp + 6, 0)
        offset += 16 + incl
    return bytes(data)


def render_scenario(
    spec: CallSpec, voice: Path | None = None, digit_pcaps: list[Path] | None = None
) -> str:
    """The SIPp XML for ``spec``; ``voice`` is an 8 kHz A-law WAV (see :func:`to_alaw`);
    ``digit_pcaps`` the digits' pcaps (default: SIPp's stock files)."""
    media_port = "[rtpstream_audio_port]" if voice else "[media_port]"
    parts = [
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="ivr-lab call">\n',
        _send(
            INVITE.replace("[MEDIA_PORT]", media_port).replace(
                '"ivr-lab" <sip:sipp@', f'"ivr-lab" <sip:{spec.caller}@'
            ),
            retrans=True,
        ),
        '  <recv response="100" optional="true"/>\n',
        '  <recv response="180" optional="true"/>\n',
        '  <recv response="183" optional="true"/>\n',
        '  <recv response="200" rtd="true" crlf="true"/>\n',
        _send(ACK),
    ]
    if spec.digits:
        parts.append(_pause(spec.first_digit_after_s))
        for i, pcap in enumerate(digit_pcaps or _stock_pcaps(spec.digits)):
            if i:
                gap = spec.gaps_s[i - 1] if i - 1 < len(spec.gaps_s) else spec.digit_gap_s
                parts.append(_pause(gap))
            parts.append(_exec("play_pcap_audio", str(pcap)))
    if voice:
        parts += [_pause(spec.voice_after_s), _exec("rtp_stream", f"{voice},1,8")]
    hold_ms = round(spec.hold_s * 1000)
    if spec.expect_hangup:
        parts += [f'  <recv request="BYE" timeout="{hold_ms}"/>\n', _send(OK_TO_BYE)]
    else:
        parts += [
            _pause(spec.hold_s),
            _send(BYE, retrans=True),
            '  <recv response="200" crlf="true"/>\n',
        ]
    parts.append("</scenario>\n")
    return "".join(parts)


def to_alaw(wav: Path, workdir: Path) -> Path:
    """Convert any WAV to 8 kHz mono A-law, as SIPp's rtp_stream plays it (payload 8)."""
    if not wav.exists():
        raise LabError(f"caller voice file {wav} does not exist")
    out = workdir / f"voice-{wav.stem}.wav"
    run(["sox", str(wav), "-r", "8000", "-c", "1", "-e", "a-law", str(out)])
    return out.resolve()


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
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

ANSWER_PORT = 5090  # asterisk-conf/pjsip.conf: survey-line and callback-line ring here

RINGING = """\
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port]>
      Content-Length: 0
"""

ANSWER_OK = """\
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

""" + INVITE[INVITE.index("      v=0") :].replace("[MEDIA_PORT]", "[media_port]")  # same SDP


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
        if shutil.which("sipp") is None:
            raise LabError("sipp is not installed: apt-get install sip-tester")
        self.workdir.mkdir(parents=True, exist_ok=True)
        pcaps = digit_pcaps(self.digits, self.workdir)
        parts = [
            '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="answer">\n',
            '  <recv request="INVITE" crlf="true"/>\n',
            _send(RINGING),
            _pause(0.3),
            _send(ANSWER_OK, retrans=True),
            '  <recv request="ACK" rtd="true" crlf="true"/>\n',
            _pause(self.first_digit_after_s),
        ]
        for i, pcap in enumerate(pcaps):
            if i:
                parts.append(_pause(self.gaps_s[i - 1] if i - 1 < len(self.gaps_s) else 2.0))
            parts.append(_exec("play_pcap_audio", str(pcap)))
        timeout_ms = round(self.timeout_s * 1000)
        parts += [
            f'  <recv request="BYE" timeout="{timeout_ms}"/>\n',
            _send(OK_TO_BYE),
            "</scenario>\n",
        ]
        self._scenario = self.workdir / f"answer-{time.time_ns()}.xml"
        self._scenario.write_text("".join(parts))
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
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
