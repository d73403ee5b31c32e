"""Issue 10, parts 1-3: who can call in, strict RTP, no shipped passwords.

The plain tests read asterisk-conf/ and the lab's and the docker entrypoint's secret handling.
The ``asterisk`` ones play an outsider against the lab's real Asterisk: INVITEs without
credentials to the public transport (udp-phones, 5060), and RFC 4733 digits sent into a live
call from a second source port.

An outsider's packets come from an address no ``[identify]`` trusts. The lab shares this
host's network, so the probes are sent from such addresses of this host: 127.0.0.2 and, when
there is one, the host's own non-loopback address. 127.0.0.1 is the test endpoint's address
(identify by IP, see asterisk-conf/pjsip.conf), which nothing from the network can carry.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
from helpers import Records, wait_until_idle
from serve import ROOT, IvrServe

from ivr.call.record import CallRecord
from ivr.lab import Lab, LabPaths, asterisk_conf, credentials, probe
from ivr.lab.asterisk_conf import Section

CONF = ROOT / "asterisk-conf"
PUBLIC = ("127.0.0.1", 5060)  # udp-phones binds 0.0.0.0:5060
TEST_ENDPOINT = ("127.0.0.1", 5080)  # udp-test, the [sipp] endpoint
ENDPOINTS = asterisk_conf.endpoint_names(CONF)
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def pjsip() -> list[Section]:
    return asterisk_conf.load(CONF / "pjsip.conf")


def _is_loopback(address: str) -> bool:
    host = address.split("/")[0].strip("[]")
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host  # 127.0.0.1:5060
    ip = ipaddress.ip_address(host)
    return any(ip in net for net in LOOPBACK)


def _identified(sections: list[Section]) -> dict[str, list[str]]:
    """endpoint -> the addresses its [identify] sections match."""
    out: dict[str, list[str]] = {}
    for ident in asterisk_conf.objects(sections, "identify"):
        matches = [m.strip() for v in ident.all("match") for m in v.split(",")]
        out.setdefault(ident.get("endpoint") or "", []).extend(matches)
    return out


def _contexts() -> dict[str, list[Section]]:
    sections = asterisk_conf.load(CONF / "extensions.conf")
    return {s.name: [x for x in sections if x.name == s.name] for s in sections}


# ------------------------------------------------------------------ part 1: SIP identity


def test_every_endpoint_proves_who_it_is_or_takes_no_calls() -> None:
    sections = pjsip()
    identified = _identified(sections)
    transports = {t.name: t for t in asterisk_conf.objects(sections, "transport")}
    contexts = _contexts()
    assert ENDPOINTS, "no endpoint found in pjsip.conf"
    for endpoint in asterisk_conf.objects(sections, "endpoint"):
        name, how = endpoint.name, endpoint.get("identify_by")
        # Asterisk's default (username,ip) would let the From user alone pick the endpoint
        assert how, f"[{name}]: set identify_by explicitly"
        ways = {w.strip() for w in how.split(",")}
        if endpoint.get("auth"):
            continue  # digest auth: a 401 challenge whatever picked it
        assert ways == {"ip"}, f"[{name}] has no auth, so it may only be identified by IP"
        transport = transports[endpoint.get("transport") or ""]
        assert _is_loopback(transport.get("bind") or "0.0.0.0"), (
            f"[{name}] has no auth: its transport must not be reachable from outside"
        )
        if name in identified:
            continue  # an explicit identify (loopback only: test below)
        # outbound-only: nothing can match it; still, its context runs nothing
        context = endpoint.get("context") or ""
        assert context in contexts, f"[{name}]: context {context} is not in extensions.conf"
        assert not any(s.own for s in contexts[context]), f"[{context}] must stay empty"
        assert endpoint.get("allow_transfer") == "no", f"[{name}]: allow_transfer = no"


def test_outbound_lines_can_never_be_matched_by_a_request() -> None:
    sections = pjsip()
    identified = _identified(sections)
    dialled = set(
        re.findall(
            r"PJSIP/\{number\}@([\w-]+)",
            "".join(p.read_text() for p in (ROOT / "flows").glob("*.yaml")),
        )
    )
    assert dialled, "flows/ no longer dial out on a PJSIP line?"
    endpoints = {e.name: e for e in asterisk_conf.objects(sections, "endpoint")}
    for name in sorted(dialled):
        endpoint = endpoints[name]
        assert endpoint.get("identify_by") == "ip" and name not in identified, name
        assert not endpoint.get("auth"), f"{name}: an auth would make it reachable"


def test_identify_by_ip_trusts_loopback_only() -> None:
    for endpoint, matches in _identified(pjsip()).items():
        assert matches, endpoint
        for match in matches:
            assert _is_loopback(match), f"[{endpoint}] trusts {match}: use digest auth"


def test_no_anonymous_endpoint_or_identifier() -> None:
    sections = pjsip()
    assert "anonymous" not in ENDPOINTS
    general = asterisk_conf.objects(sections, "global")
    assert len(general) == 1
    order = general[0].get("endpoint_identifier_order")
    # unset, Asterisk's default is ip,username,anonymous
    assert order, "set endpoint_identifier_order explicitly"
    assert "anonymous" not in order.split(",")
    modules = asterisk_conf.load(CONF / "modules.conf")
    noload = {v for s in modules for v in s.all("noload")}
    assert "res_pjsip_endpoint_identifier_anonymous.so" in noload


def _untrusted_sources() -> list[str]:
    """Addresses of this host that no [identify] trusts: how an outsider looks."""
    sources = ["127.0.0.2"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent: only picks the route
            public = sock.getsockname()[0]
        except OSError:
            public = ""
    if public and not _is_loopback(public):
        sources.append(public)
    return sources


def _processed(lab: Lab) -> int:
    match = re.search(r"(\d+) calls? processed", lab.cli("core show channels count"))
    assert match
    return int(match.group(1))


@pytest.mark.asterisk
def test_public_transport_listens_where_the_probes_go(lab: Lab) -> None:
    transports = lab.cli("pjsip show transports")
    assert re.search(r"udp-phones\s+udp\s+\d+\s+\d+\s+0\.0\.0\.0:5060", transports), transports
    identify = lab.cli("pjsip show identifies")
    assert "127.0.0.1/32" in identify and "sipp" in identify
    for source in _untrusted_sources():
        assert source not in identify


@pytest.mark.asterisk
@pytest.mark.parametrize("from_user", [*ENDPOINTS, "anonymous"])
async def test_invite_without_credentials_is_refused(lab: Lab, from_user: str) -> None:
    processed, log_from = _processed(lab), lab.log_size()
    results = [
        await asyncio.to_thread(probe.invite, PUBLIC, from_user, source=(source, 0))
        for source in _untrusted_sources()
    ]
    for result in results:
        assert result.status in (401, 403, 404), (
            f"From {from_user} via {result.source}: {result.reason}"
        )
    # never reached the dialplan: no extension ran, no call was counted
    await asyncio.sleep(0.3)
    log = lab.log_path().read_bytes()[log_from:].decode(errors="replace")
    assert "Executing [" not in log, log[-2000:]
    assert _processed(lab) == processed
    channels, _ = await wait_until_idle(lab, timeout_s=2)
    assert channels.startswith("0 active channels"), channels


# ------------------------------------------------------------------ part 2: strict RTP


def _rtp_conf() -> Section:
    general = asterisk_conf.first(asterisk_conf.load(CONF / "rtp.conf"), "general")
    assert general is not None
    return general


def rtp_range() -> tuple[int, int]:
    general = _rtp_conf()
    return int(general.get("rtpstart") or 0), int(general.get("rtpend") or 0)


def maxcalls() -> int:
    options = asterisk_conf.first(asterisk_conf.load(CONF / "asterisk.conf"), "options")
    assert options is not None and options.get("maxcalls")
    return int(options.get("maxcalls") or 0)


def test_strict_rtp_with_symmetric_rtp_for_nat() -> None:
    assert _rtp_conf().get("strictrtp") == "yes"
    for endpoint in asterisk_conf.objects(pjsip(), "endpoint"):
        assert endpoint.get("rtp_symmetric") == "yes", endpoint.name
        assert endpoint.get("direct_media") == "no", endpoint.name


def test_rtp_ports_cover_the_call_capacity() -> None:
    start, end = rtp_range()
    ports = end - start + 1
    assert start % 2 == 0 and 1024 < start < end
    # every call with media holds an even RTP and an odd RTCP port
    assert ports >= 2 * maxcalls(), (
        f"{ports} RTP ports carry {ports // 2} calls, maxcalls is {maxcalls()}"
    )


LEGIT_DIGIT_AT_S = 12.0  # main.yaml: welcome 2 s, then the menu prompt (9 s) and 4 s to answer
ATTACKS = (  # (seconds after the answer, how), all pressing "2" (support)
    (3.5, {"gap_s": 0.02}),  # while Asterisk still learns the caller's source (first 5 s)
    (7.0, {"gap_s": 0.02}),  # once it has locked onto it
    (8.5, {"gap_s": 0.0}),  # a burst, as fast as the socket goes
    (10.0, {"gap_s": 0.02, "like_phone": True}),  # the phone's SSRC and next sequence numbers
)


def _call(attacks: tuple[tuple[float, dict[str, object]], ...]) -> tuple[bool, int, int]:
    """A call to 100 from a phone-like caller that presses 1; ``attacks`` press 2 meanwhile
    from another port. Returns (Asterisk hung up, the caller's and the injector's port)."""
    call = probe.RtpCall(TEST_ENDPOINT, "100")
    with call.connect():
        for at_s, how in attacks:
            call.at(at_s)
            call.inject("2", **how)  # type: ignore[arg-type]
        call.at(LEGIT_DIGIT_AT_S)
        call.digit("1")
        hung_up = call.wait_hangup(20)
        return hung_up, call.media_port, call.injector_port


def _summary(record: CallRecord) -> dict[str, object]:
    return {
        "flow": record.flow,
        "path": record.path,
        "outcome": record.outcome,
        "end_node": record.end_node,
        "error": record.error,
        "caller": record.caller,
        "inputs": [(i.node, i.kind, i.value) for i in record.inputs],
        "variables": record.variables,
    }


@pytest.mark.asterisk
async def test_digits_from_a_second_source_port_change_nothing(
    lab: Lab, ivr_server: IvrServe, records: Records
) -> None:
    hung_up, _, _ = await asyncio.to_thread(_call, ())
    assert hung_up, "the flow did not end the reference call"
    reference = _summary(await records.one())
    assert reference["path"] == ["welcome", "menu", "sales", "goodbye"], reference
    assert reference["inputs"] == [("menu", "dtmf", "1")]

    await records.snapshot()
    hung_up, media_port, injector_port = await asyncio.to_thread(_call, ATTACKS)
    assert hung_up, "the flow did not end the attacked call"
    assert media_port != injector_port
    attacked = _summary(await records.one())
    assert attacked == reference
    channels, _ = await wait_until_idle(lab, timeout_s=5)
    assert channels.startswith("0 active channels"), channels


# ------------------------------------------------------------------ part 3: no shipped passwords

# (path glob, pattern) a shipped password or secret would match
SHIPPED = [
    ("*", re.compile(r"\b100[12]-local\b")),  # the passwords shipped until issue 10
    ("asterisk-conf/*.conf", re.compile(r"^\s*(password|secret)\s*=", re.M)),
    ("docker-compose.yml", re.compile(r"\w*(PASSWORD|SECRET):-[^}]")),
    ("docker/*", re.compile(r"\w*(PASSWORD|SECRET):-[^}]")),
    ("ivr/lab/*.py", re.compile(r"environ\.get\(\s*['\"]IVR_\w*(PASSWORD|SECRET)['\"]\s*,")),
]


HISTORY = {  # files that may name the passwords shipped before issue 10, as history
    "tests/e2e/test_sip_security.py",  # the patterns themselves, and a probe with the old one
}


def _tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def test_no_password_ships_with_the_project() -> None:
    found = []
    files = _tracked_files()
    for pattern_glob, pattern in SHIPPED:
        for path in files:
            rel = path.relative_to(ROOT)
            if not fnmatch.fnmatchcase(rel.as_posix(), pattern_glob) or rel.suffix in (
                ".wav",
                ".png",
                ".gz",
                ".zst",
                ".pcap",
            ):
                continue
            if rel.as_posix() in HISTORY:
                continue
            text = path.read_text(errors="replace")
            found += [f"{rel}: {m.group(0).strip()}" for m in pattern.finditer(text)]
    assert not found, found


@pytest.fixture
def lab_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabPaths:
    for spec in credentials.secret_specs(CONF):
        monkeypatch.delenv(spec.env_var, raising=False)
    (tmp_path / "root/etc").mkdir(parents=True)
    return LabPaths(
        repo=ROOT, root=tmp_path / "root", cache=tmp_path / "cache", state=tmp_path / "state"
    )


def _secret_lines(paths: LabPaths) -> dict[str, str]:
    etc = paths.root / "etc/asterisk/secrets"
    assert etc.stat().st_mode & 0o777 == 0o700
    out = {}
    for conf in etc.iterdir():
        assert conf.stat().st_mode & 0o777 == 0o600, conf
        out[conf.stem] = conf.read_text().strip()
    return out


def test_lab_generates_random_secrets_once_into_a_root_only_file(
    lab_paths: LabPaths,
) -> None:
    credentials.install_config(lab_paths)
    file = lab_paths.state / credentials.SECRETS_FILE
    assert file.stat().st_mode & 0o777 == 0o600
    values = dict(
        line.split("=", 1)
        for line in file.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(values) == {"IVR_AMI_SECRET", "IVR_SIP_1001_PASSWORD", "IVR_SIP_1002_PASSWORD"}
    assert all(re.fullmatch(r"[0-9a-f]{32}", v) for v in values.values()), values
    assert len(set(values.values())) == 3
    lines = _secret_lines(lab_paths)
    assert lines == {
        "ami-ivr": f"secret = {values['IVR_AMI_SECRET']}",
        "sip-1001": f"password = {values['IVR_SIP_1001_PASSWORD']}",
        "sip-1002": f"password = {values['IVR_SIP_1002_PASSWORD']}",
    }
    # the next start keeps them (phones stay registered, `ivr serve` keeps its AMI login)
    credentials.install_config(lab_paths)
    assert _secret_lines(lab_paths) == lines
    assert Lab(lab_paths).ami_secret == values["IVR_AMI_SECRET"]


def test_lab_environment_wins_and_the_old_ami_secret_is_kept(
    lab_paths: LabPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab_paths.state.mkdir()
    (lab_paths.state / credentials.LEGACY_AMI_SECRET).write_text("from-before\n")
    monkeypatch.setenv("IVR_SIP_1001_PASSWORD", "chosen-by-me")
    credentials.install_config(lab_paths)
    lines = _secret_lines(lab_paths)
    assert lines["sip-1001"] == "password = chosen-by-me"
    assert lines["ami-ivr"] == "secret = from-before"  # a running `ivr serve` keeps working
    assert not (lab_paths.state / credentials.LEGACY_AMI_SECRET).exists()


def test_lab_status_says_where_the_secrets_are(
    lab_paths: LabPaths, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ivr.lab import cli

    monkeypatch.setenv("IVR_LAB_ROOT", str(lab_paths.root))
    monkeypatch.setenv("IVR_LAB_CACHE", str(lab_paths.cache))
    monkeypatch.setenv("IVR_LAB_STATE", str(lab_paths.state))
    assert cli.main(["status"]) == 3  # not running
    assert f"secrets:  {lab_paths.state / credentials.SECRETS_FILE}" in capsys.readouterr().out


@pytest.mark.asterisk
async def test_lab_softphone_password_is_the_generated_one(lab: Lab) -> None:
    values = dict(
        line.split("=", 1)
        for line in lab.secrets_file.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert lab.secrets_file.stat().st_mode & 0o777 == 0o600
    password = os.environ.get("IVR_SIP_1001_PASSWORD") or values["IVR_SIP_1001_PASSWORD"]
    source = ("127.0.0.2", 0)
    assert await asyncio.to_thread(probe.register, PUBLIC, "1001", password, source=source) == 200
    refused = await asyncio.to_thread(probe.register, PUBLIC, "1001", "1001-local", source=source)
    assert refused in (401, 403), refused
