"""A few hand-made SIP and RTP packets, to look at the lab as an outsider would.

:func:`invite` sends one INVITE without credentials and reports Asterisk's final answer (a
call that was wrongly answered is ACKed and hung up at once). :class:`RtpCall` is a tiny SIP
user agent that places a call, streams A-law silence from the port its SDP announced (as a
phone does, so Asterisk's strict RTP locks onto it), presses RFC 4733 digits on that stream,
and can send digits from a *second* source port into the call's media, as an injector would.
"""

from __future__ import annotations

import hashlib
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Address = tuple[str, int]

EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
PCMA, TELEPHONE_EVENT = 8, 101
SILENCE = bytes([0xD5]) * 160  # 20 ms of A-law silence


def _token() -> str:
    return f"{random.getrandbits(64):016x}"


def _sdp(ip: str, port: int) -> str:
    return (
        f"v=0\r\no=probe 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {PCMA} {TELEPHONE_EVENT}\r\n"
        f"a=rtpmap:{PCMA} PCMA/8000\r\na=rtpmap:{TELEPHONE_EVENT} telephone-event/8000\r\n"
        f"a=fmtp:{TELEPHONE_EVENT} 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )


@dataclass
class SipMessage:
    first_line: str
    headers: list[tuple[str, str]]
    body: str

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        return cls(lines[0], headers, body)

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k == name.lower()), "")

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    @property
    def status(self) -> int | None:
        """The status code of a response, None for a request."""
        if not self.first_line.startswith("SIP/2.0 "):
            return None
        return int(self.first_line.split()[1])

    @property
    def method(self) -> str:
        return "" if self.status is not None else self.first_line.split()[0]

    @property
    def cseq_method(self) -> str:
        return self.header("cseq").split()[-1] if self.header("cseq") else ""

    def media(self) -> Address | None:
        """The audio address of the SDP body (``c=`` and ``m=audio``)."""
        conn = re.search(r"^c=IN IP4 (\S+)", self.body, re.M)
        port = re.search(r"^m=audio (\d+)", self.body, re.M)
        return (conn.group(1), int(port.group(1))) if conn and port else None


@dataclass
class Dialog:
    """What both ends of one INVITE share: enough to ACK, BYE and answer a BYE."""

    sock: socket.socket
    target: Address
    ruri: str
    from_hdr: str
    call_id: str
    contact: str
    to_hdr: str = ""
    remote_target: str = ""
    cseq: int = 1

    @property
    def local(self) -> Address:
        addr: Address = self.sock.getsockname()
        return addr

    def via(self, branch: str) -> str:
        ip, port = self.local
        return f"SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{branch};rport"

    def request(
        self, method: str, *, uri: str, to_hdr: str, cseq: int, branch: str, body: str = ""
    ) -> bytes:
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: {self.via(branch)}",
            "Max-Forwards: 70",
            f"From: {self.from_hdr}",
            f"To: {to_hdr}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: {self.contact}",
            "User-Agent: ivr-lab-probe",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def receive(self, timeout_s: float) -> SipMessage | None:
        """The next message of this call (others are skipped), or None at the timeout."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                return None
            message = SipMessage.parse(data)
            if message.header("call-id") == self.call_id:
                return message
        return None

    def reply(self, request: SipMessage, status: str) -> None:
        lines = [f"SIP/2.0 {status}"]
        lines += [f"Via: {v}" for v in request.all("via")]
        lines += [
            f"From: {request.header('from')}",
            f"To: {request.header('to')}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {request.header('cseq')}",
            "Content-Length: 0",
        ]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def ack(self, response: SipMessage, branch: str) -> None:
        """ACK a final response (a 2xx in a new transaction, others in the INVITE's)."""
        self.to_hdr = response.header("to")
        if (response.status or 0) < 300:
            contact = re.search(r"<([^>]+)>", response.header("contact"))
            self.remote_target = contact.group(1) if contact else self.ruri
            uri, branch = self.remote_target, _token()
        else:
            uri = self.ruri
        self.send(self.request("ACK", uri=uri, to_hdr=self.to_hdr, cseq=1, branch=branch))

    def bye(self, timeout_s: float = 2.0) -> None:
        self.cseq += 1
        self.send(
            self.request(
                "BYE",
                uri=self.remote_target or self.ruri,
                to_hdr=self.to_hdr,
                cseq=self.cseq,
                branch=_token(),
            )
        )
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is None or (message.status and message.cseq_method == "BYE"):
                return
            if message.method == "BYE":
                self.reply(message, "200 OK")
                return


def open_dialog(
    target: Address, source: Address, from_user: str, ext: str, from_domain: str
) -> Dialog:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(source)
    ip, port = sock.getsockname()
    return Dialog(
        sock=sock,
        target=target,
        ruri=f"sip:{ext}@{target[0]}:{target[1]}",
        from_hdr=f"<sip:{from_user}@{from_domain}>;tag={_token()}",
        call_id=f"{_token()}@{from_domain}",
        contact=f"<sip:{from_user}@{ip}:{port}>",
    )


@dataclass(frozen=True)
class InviteResult:
    status: int | None  # Asterisk's final answer, None if none came
    reason: str  # e.g. "401 Unauthorized"
    source: Address  # where the INVITE came from

    @property
    def answered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def invite(
    target: Address,
    from_user: str,
    *,
    source: Address = ("0.0.0.0", 0),
    ext: str = "100",
    from_domain: str = "evil.example",
    timeout_s: float = 5.0,
) -> InviteResult:
    """One INVITE with ``From: <sip:from_user@from_domain>`` and no credentials."""
    dialog = open_dialog(target, source, from_user, ext, from_domain)
    with dialog.sock:
        branch = _token()
        ip, port = dialog.local
        dialog.send(
            dialog.request(
                "INVITE",
                uri=dialog.ruri,
                to_hdr=f"<{dialog.ruri}>",
                cseq=1,
                branch=branch,
                body=_sdp(ip, port + 2),
            )
        )
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            message = dialog.receive(left)
            if message is None:
                break
            if message.status is None or message.status < 200:
                continue
            dialog.ack(message, branch)
            if 200 <= message.status < 300:
                dialog.bye()  # it must not have been answered: do not leave the call up
            return InviteResult(message.status, message.first_line[8:], (ip, port))
        return InviteResult(None, f"no final answer within {timeout_s:.0f} s", (ip, port))


def _digest(challenge: str, *, method: str, uri: str, user: str, password: str) -> str:
    """An RFC 2617 MD5 ``Authorization`` value answering one ``WWW-Authenticate``."""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))

    def md5(text: str) -> str:  # SIP digest auth is MD5 (RFC 2617)
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    ha1 = md5(f"{user}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{uri}")
    fields = {
        "username": user,
        "realm": params["realm"],
        "nonce": params["nonce"],
        "uri": uri,
        "algorithm": "MD5",
    }
    if "auth" in params.get("qop", "").split(","):
        cnonce, nc = _token(), "00000001"
        fields |= {"qop": "auth", "nc": nc, "cnonce": cnonce}
        fields["response"] = md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    else:
        fields["response"] = md5(f"{ha1}:{params['nonce']}:{ha2}")
    if "opaque" in params:
        fields["opaque"] = params["opaque"]
    bare = ("qop", "nc", "algorithm")
    return "Digest " + ",".join(
        f"{k}={v}" if k in bare else f'{k}="{v}"' for k, v in fields.items()
    )


def register(
    target: Address,
    user: str,
    password: str,
    *,
    source: Address = ("0.0.0.0", 0),
    timeout_s: float = 5.0,
) -> int | None:
    """REGISTER ``user`` with digest auth and ``Expires: 0`` (a check that leaves no binding);
    the final status of the authenticated attempt (200: the password is right)."""
    domain = target[0]
    dialog = open_dialog(target, source, user, "", domain)
    uri = f"sip:{target[0]}:{target[1]}"
    to_hdr = f"<sip:{user}@{domain}>"
    with dialog.sock:
        authorization = ""
        for cseq in (1, 2):
            request = dialog.request(
                "REGISTER", uri=uri, to_hdr=to_hdr, cseq=cseq, branch=_token()
            ).decode()
            extra = "Expires: 0\r\n" + (
                f"Authorization: {authorization}\r\n" if authorization else ""
            )
            dialog.send(request.replace("Content-Length:", extra + "Content-Length:").encode())
            deadline = time.monotonic() + timeout_s
            response = None
            while (left := deadline - time.monotonic()) > 0:
                message = dialog.receive(left)
                if message is None:
                    break
                if message.status is not None and message.status >= 200:
                    response = message
                    break
            if response is None:
                return None
            challenges = [
                c
                for c in response.all("www-authenticate")
                if "MD5" in c.upper() or "algorithm" not in c.lower()
            ]
            if response.status != 401 or authorization or not challenges:
                return response.status
            authorization = _digest(
                challenges[0], method="REGISTER", uri=uri, user=user, password=password
            )
        return None


# --- RTP --------------------------------------------------------------------------------


def rtp_packet(
    *, payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False
) -> bytes:
    return (
        struct.pack(
            "!BBHII",
            0x80,
            (0x80 if marker else 0) | payload_type,
            seq & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        + payload
    )


def dtmf_payloads(digit: str, *, packets: int = 8, ends: int = 3) -> list[bytes]:
    """RFC 4733 telephone-event payloads for one digit: ``packets`` updates 20 ms apart,
    then the end packet ``ends`` times (as phones send it)."""
    code = EVENT_CODES[digit]
    out = [struct.pack("!BBH", code, 10, 160 * (i + 1)) for i in range(packets)]
    out += [struct.pack("!BBH", code, 0x80 | 10, 160 * packets)] * ends
    return out


@dataclass
class RtpStream:
    """One RTP source: its socket, SSRC, sequence number and timestamp."""

    sock: socket.socket
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    seq: int = field(default_factory=lambda: random.getrandbits(15))
    timestamp: int = field(default_factory=lambda: random.getrandbits(31))

    def send_audio(self, to: Address) -> None:
        self.sock.sendto(
            rtp_packet(
                payload_type=PCMA,
                seq=self.seq,
                timestamp=self.timestamp,
                ssrc=self.ssrc,
                payload=SILENCE,
            ),
            to,
        )
        self.seq += 1
        self.timestamp += 160

    def send_digit(self, digit: str, to: Address, *, gap_s: float = 0.02) -> None:
        """One digit as telephone-events, paced ``gap_s`` apart (0: all at once)."""
        payloads = dtmf_payloads(digit)
        for i, payload in enumerate(payloads):
            self.sock.sendto(
                rtp_packet(
                    payload_type=TELEPHONE_EVENT,
                    seq=self.seq,
                    timestamp=self.timestamp,
                    ssrc=self.ssrc,
                    payload=payload,
                    marker=i == 0,
                ),
                to,
            )
            self.seq += 1
            if gap_s:
                time.sleep(gap_s)
        self.timestamp += 160 * (len(payloads) + 1)


class RtpCall:
    """A call from ``source`` to ``target`` that sends media like a phone.

    ``with RtpCall(...).connect() as call``: INVITE, ACK, then 20 ms A-law packets from the
    SDP's port until the call ends; ``call.digit("1")`` presses a key on that stream and
    ``call.inject("2", gap_s=...)`` sends one from another source port."""

    def __init__(
        self,
        target: Address,
        ext: str,
        *,
        from_user: str = "sipp",
        source_ip: str = "127.0.0.1",
        timeout_s: float = 5.0,
    ) -> None:
        self.dialog = open_dialog(target, (source_ip, 0), from_user, ext, source_ip)
        self.media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.media.bind((source_ip, 0))
        self.injector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.injector.bind((source_ip, 0))
        self.stream = RtpStream(self.media)
        self.timeout_s = timeout_s
        self.remote_media: Address | None = None
        self.answered_at = 0.0
        self.hung_up = threading.Event()  # Asterisk sent BYE
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one packet at a time on the phone's stream
        self._pressing = threading.Event()  # a key is down: no audio packets meanwhile
        self._threads: list[threading.Thread] = []

    @property
    def media_port(self) -> int:
        port: int = self.media.getsockname()[1]
        return port

    @property
    def injector_port(self) -> int:
        port: int = self.injector.getsockname()[1]
        return port

    @contextmanager
    def connect(self) -> Iterator[RtpCall]:
        try:
            self._invite()
            self._threads = [
                threading.Thread(target=self._send_audio, daemon=True),
                threading.Thread(target=self._drain, daemon=True),
                threading.Thread(target=self._watch_sip, daemon=True),
            ]
            for thread in self._threads:
                thread.start()
            yield self
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(3)
            if self.remote_media is not None and not self.hung_up.is_set():
                self.dialog.bye()
            for sock in (self.dialog.sock, self.media, self.injector):
                sock.close()

    def _invite(self) -> None:
        ip = self.dialog.local[0]
        branch = _token()
        self.dialog.send(
            self.dialog.request(
                "INVITE",
                uri=self.dialog.ruri,
                to_hdr=f"<{self.dialog.ruri}>",
                cseq=1,
                branch=branch,
                body=_sdp(ip, self.media_port),
            )
        )
        deadline = time.monotonic() + self.timeout_s
        while (left := deadline - time.monotonic()) > 0:
            message = self.dialog.receive(left)
            if message is None:
                break
            if message.status is None or message.status < 200:
                continue
            self.dialog.ack(message, branch)
            if message.status >= 300:
                raise ConnectionError(f"call refused: {message.first_line}")
            self.remote_media = message.media()
            if self.remote_media is None:
                raise ConnectionError("the 200 OK had no audio in its SDP")
            self.answered_at = time.monotonic()
            return
        raise ConnectionError(f"no answer within {self.timeout_s:.0f} s")

    def _send_audio(self) -> None:
        assert self.remote_media is not None
        next_at = time.monotonic()
        while not self._stop.is_set() and not self.hung_up.is_set():
            if not self._pressing.is_set():
                with self._lock:
                    self.stream.send_audio(self.remote_media)
            next_at += 0.02
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _drain(self) -> None:
        self.media.settimeout(0.2)
        while not self._stop.is_set():
            try:
                self.media.recvfrom(4096)
            except (TimeoutError, OSError):
                continue

    def _watch_sip(self) -> None:
        while not self._stop.is_set():
            message = self.dialog.receive(0.2)
            if message is None:
                continue
            if message.method == "BYE":
                self.dialog.reply(message, "200 OK")
                self.hung_up.set()
            elif message.status and message.cseq_method == "INVITE" and message.status < 300:
                self.dialog.ack(message, _token())  # a retransmitted 200 OK
            elif message.method in ("OPTIONS", "INFO", "UPDATE", "NOTIFY"):
                self.dialog.reply(message, "200 OK")

    def at(self, seconds_after_answer: float) -> None:
        """Sleep until ``seconds_after_answer`` seconds after the 200 OK."""
        time.sleep(max(0.0, self.answered_at + seconds_after_answer - time.monotonic()))

    def digit(self, digit: str) -> None:
        """Press ``digit`` on the phone's own stream (its port, SSRC and sequence)."""
        assert self.remote_media is not None
        self._pressing.set()
        try:
            with self._lock:
                self.stream.send_digit(digit, self.remote_media)
        finally:
            self._pressing.clear()

    def inject(self, digit: str, *, gap_s: float = 0.02, like_phone: bool = False) -> None:
        """Send ``digit`` into the call's media from a second source port.

        ``like_phone``: reuse the phone's SSRC, next sequence numbers and timestamp (what an
        on-path attacker who saw the stream would forge); else a stream of its own."""
        assert self.remote_media is not None
        stream = RtpStream(self.injector)
        if like_phone:
            with self._lock:
                stream.ssrc, stream.seq = self.stream.ssrc, self.stream.seq + 1
                stream.timestamp = self.stream.timestamp
        stream.send_digit(digit, self.remote_media, gap_s=gap_s)

    def wait_hangup(self, timeout_s: float) -> bool:
        return self.hung_up.wait(timeout_s)
