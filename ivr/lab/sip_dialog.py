"""Just enough SIP over UDP for the lab's probes: messages, one dialog, digest auth.

:class:`SipMessage` parses what Asterisk sends; :class:`Dialog` builds and sends the requests
of one call (INVITE, ACK, BYE, REGISTER), answers Asterisk's requests and skips other calls'
messages; :func:`digest_authorization` answers a ``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

import hashlib
import random
import re
import socket
import time
from dataclasses import dataclass

from ivr.lab.rtp import PCMA, TELEPHONE_EVENT, Address


def token() -> str:
    """A random 64-bit hex string: tags, branches, Call-IDs and nonces."""
    return f"{random.getrandbits(64):016x}"


def sdp_offer(ip: str, port: int) -> str:
    """An SDP body offering A-law and RFC 4733 telephone-events at ``ip:port``."""
    return (
        f"v=0\r\no=probe 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {PCMA} {TELEPHONE_EVENT}\r\n"
        f"a=rtpmap:{PCMA} PCMA/8000\r\na=rtpmap:{TELEPHONE_EVENT} telephone-event/8000\r\n"
        f"a=fmtp:{TELEPHONE_EVENT} 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )


@dataclass
class SipMessage:
    """One SIP request or response, headers in order (names lower-cased)."""

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
            uri, branch = self.remote_target, token()
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
                branch=token(),
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
    """A dialog from a new UDP socket bound to ``source`` to ``ext`` at ``target``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(source)
    ip, port = sock.getsockname()
    return Dialog(
        sock=sock,
        target=target,
        ruri=f"sip:{ext}@{target[0]}:{target[1]}",
        from_hdr=f"<sip:{from_user}@{from_domain}>;tag={token()}",
        call_id=f"{token()}@{from_domain}",
        contact=f"<sip:{from_user}@{ip}:{port}>",
    )


def digest_authorization(challenge: str, *, method: str, uri: str, user: str, password: str) -> str:
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
        cnonce, nc = token(), "00000001"
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
