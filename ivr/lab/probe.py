"""A few hand-made SIP and RTP packets, to look at the lab as an outsider would.

:func:`invite` sends one INVITE without credentials and reports Asterisk's final answer (a
call that was wrongly answered is ACKed and hung up at once). :class:`RtpCall` is a tiny SIP
user agent that places a call, streams A-law silence from the port its SDP announced (as a
phone does, so Asterisk's strict RTP locks onto it), presses RFC 4733 digits on that stream,
and can send digits from a *second* source port into the call's media, as an injector would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ivr.lab.rtp import Address, RtpStream
from ivr.lab.sip_dialog import digest_authorization, open_dialog, sdp_offer, token


@dataclass(frozen=True)
class InviteResult:
    """How Asterisk answered one :func:`invite`."""

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
        branch = token()
        ip, port = dialog.local
        dialog.send(
            dialog.request(
                "INVITE",
                uri=dialog.ruri,
                to_hdr=f"<{dialog.ruri}>",
                cseq=1,
                branch=branch,
                body=sdp_offer(ip, port + 2),
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
                "REGISTER", uri=uri, to_hdr=to_hdr, cseq=cseq, branch=token()
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
            authorization = digest_authorization(
                challenges[0], method="REGISTER", uri=uri, user=user, password=password
            )
        return None


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
        branch = token()
        self.dialog.send(
            self.dialog.request(
                "INVITE",
                uri=self.dialog.ruri,
                to_hdr=f"<{self.dialog.ruri}>",
                cseq=1,
                branch=branch,
                body=sdp_offer(ip, self.media_port),
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
                self.dialog.ack(message, token())  # a retransmitted 200 OK
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
