"""SIPp scenarios for the lab: what a call does (:class:`CallSpec`) written as SIPp XML.

SIPp cannot substitute fields inside ``rtp_stream`` or ``play_pcap_audio``, so each call gets
a scenario of its own with the paths written into it. :func:`render_scenario` places a call
(digits, caller voice, who hangs up); :func:`render_answer_scenario` answers one and presses
digits (callbacks, outbound surveys). Running them is :mod:`ivr.lab.sipp`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import LabError
from ivr.lab.dtmf_pcaps import DIGIT_NAMES, stock_pcaps


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


def render_scenario(
    spec: CallSpec, voice: Path | None = None, digit_pcaps: list[Path] | None = None
) -> str:
    """The SIPp XML for ``spec``; ``voice`` is an 8 kHz A-law WAV (see
    :func:`ivr.lab.sipp.to_alaw`); ``digit_pcaps`` the digits' pcaps (default: SIPp's stock
    files)."""
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
        for i, pcap in enumerate(digit_pcaps or stock_pcaps(spec.digits)):
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


# --- answering calls (callbacks, outbound surveys) -------------------------------------------

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


def render_answer_scenario(
    digit_pcaps: list[Path],
    *,
    first_digit_after_s: float,
    gaps_s: tuple[float, ...],
    timeout_s: float,
) -> str:
    """The SIPp XML that answers one call, presses ``digit_pcaps`` (gaps: ``gaps_s``, else
    2 s) and waits up to ``timeout_s`` for Asterisk's BYE."""
    parts = [
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="answer">\n',
        '  <recv request="INVITE" crlf="true"/>\n',
        _send(RINGING),
        _pause(0.3),
        _send(ANSWER_OK, retrans=True),
        '  <recv request="ACK" rtd="true" crlf="true"/>\n',
        _pause(first_digit_after_s),
    ]
    for i, pcap in enumerate(digit_pcaps):
        if i:
            parts.append(_pause(gaps_s[i - 1] if i - 1 < len(gaps_s) else 2.0))
        parts.append(_exec("play_pcap_audio", str(pcap)))
    timeout_ms = round(timeout_s * 1000)
    parts += [
        f'  <recv request="BYE" timeout="{timeout_ms}"/>\n',
        _send(OK_TO_BYE),
        "</scenario>\n",
    ]
    return "".join(parts)
