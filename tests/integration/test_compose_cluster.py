"""docker-compose.yml's cluster profile: PostgreSQL, two ivr nodes, dnsmasq for hagi://.

Checked statically like the single-node stack (tests/integration/test_compose.py): the
services, the SRV records against what the dialplan asks for, each node's settings as
`ivr serve` would load them, secrets, images and published ports.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from support.compose_file import REPO, compose_config, load_compose, published

from ivr.config import AgiSettings, load_settings

CLUSTER = {"cluster-asterisk", "dns", "postgres", "ivr-1", "ivr-2", "cluster-caller"}
NODES = ("ivr-1", "ivr-2")
DNS_CONF = REPO / "docker/dns-cluster.conf"
MANAGER = REPO / "docker/manager-cluster.conf"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = compose["services"]
    return out


def _settings(path: Path, key: str) -> list[str]:
    """The values of ``key`` in a key=value (dnsmasq) or key = value (Asterisk) file."""
    lines = (line.split(";")[0].strip() for line in path.read_text().splitlines())
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return [value.strip() for name, value in pairs if name.strip() == key]


def _address(service: dict[str, Any]) -> str:
    address: str = service["networks"]["cluster"]["ipv4_address"]
    return address


def _depends(services: dict[str, Any], name: str) -> set[str]:
    direct = set(services[name].get("depends_on", {}))
    return direct.union(*(_depends(services, d) for d in direct))


def test_cluster_services_are_only_in_the_cluster_profile(services: dict[str, Any]) -> None:
    in_cluster = {n for n, s in services.items() if "cluster" in s.get("profiles", [])}
    assert in_cluster == CLUSTER
    for name in CLUSTER:
        assert services[name]["profiles"] == ["cluster"], name
    # a plain `docker compose up` starts what it always did: these carry no profile
    assert "profiles" not in services["asterisk"] and "profiles" not in services["ivr"]
    for name in ("cluster-asterisk", "postgres", *NODES):
        assert "test" in services[name]["healthcheck"], name
    # `up ivr-1 ivr-2` brings what the nodes need, and nothing of the single-node stack
    for node in NODES:
        assert _depends(services, node) == {"cluster-asterisk", "postgres", "dns"}
    assert services["cluster-caller"]["network_mode"] == "service:cluster-asterisk"


def test_srv_records_are_what_the_cluster_asterisk_asks_for(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    service = services["cluster-asterisk"]["environment"]["IVR_AGI_SERVICE"]
    records = [value.split(",") for value in _settings(DNS_CONF, "srv-host")]
    assert {r[0] for r in records} == {f"_agi._tcp.{service}"}
    targets = {r[1]: (int(r[2]), int(r[3]), int(r[4])) for r in records}
    hosts = {}
    for value in _settings(DNS_CONF, "host-record"):
        *names, address = value.split(",")
        hosts.update(dict.fromkeys(names, address))
    assert set(targets) == {f"{node}.{service}" for node in NODES}
    for node in NODES:
        env = services[node]["environment"]
        assert "IVR_AGI_PORT" not in env  # the nodes listen where the records point
        assert targets[f"{node}.{service}"][0] == AgiSettings().port
        # the SRV target and the AudioSocket host the node advertises: the node's address
        assert hosts[f"{node}.{service}"] == _address(services[node])
        assert hosts[env["IVR_SPEECH_ADVERTISE_HOST"]] == _address(services[node])
    # one priority and weight: active/active (docker/dns-cluster.conf says why)
    assert len({(priority, weight) for _, priority, weight in targets.values()}) == 1
    # Asterisk's resolver is the dns service, all on the one fixed subnet
    dns = _address(services["dns"])
    assert services["cluster-asterisk"]["dns"] == [dns]
    subnet = ipaddress.ip_network(compose["networks"]["cluster"]["ipam"]["config"][0]["subnet"])
    addresses = [dns, *(_address(services[n]) for n in NODES)]
    assert len(set(addresses)) == 3
    assert all(ipaddress.ip_address(a) in subnet for a in addresses)
    # the dialplan reads the variable and keeps the port out of hagi:// (it would turn SRV off)
    dialplan = (REPO / "asterisk-conf/extensions.conf").read_text()
    assert "ENV(IVR_AGI_SERVICE)" in dialplan
    assert re.search(r"AGI\(hagi://\$\{IVR_AGI_SERVICE\}/", dialplan)
    assert not re.search(r"hagi://[^/\s]*:\d", dialplan)


def test_each_node_loads_its_own_settings(services: dict[str, Any], tmp_path: Path) -> None:
    """The nodes' environment through ivr.config, as `ivr serve` reads it in the container."""
    (tmp_path / "pw").write_text("  db-password\n")
    (tmp_path / "ami").write_text("ami-secret\n")
    secret_mount = "ivr-cluster-secrets:/var/lib/ivr-secrets"
    assert f"{secret_mount}" in services["cluster-asterisk"]["volumes"]
    loaded = {}
    for node in NODES:
        service = services[node]
        env = dict(service["environment"])
        assert env["IVR_STORE_PASSWORD_FILE"] == "/run/secrets/postgres-password"
        assert service["secrets"] == ["postgres-password"]
        assert env["IVR_AMI_SECRET_FILE"].startswith("/var/lib/ivr-secrets/")
        assert f"{secret_mount}:ro" in service["volumes"]
        env["IVR_STORE_PASSWORD_FILE"] = str(tmp_path / "pw")
        env["IVR_AMI_SECRET_FILE"] = str(tmp_path / "ami")
        env["IVR_ADMIN_TOKEN"] = ""
        settings = load_settings(REPO / "ivr.yaml", env)
        loaded[node] = settings
        assert settings.node_id == node
        assert settings.agi.host == settings.speech.host == settings.admin.host == "0.0.0.0"
        assert settings.speech.advertise_host == node  # Asterisk dials this node back
        url = urlsplit(settings.store.url)
        assert (url.scheme, url.username, url.password) == ("postgresql", "ivr", None)
        assert (url.hostname, url.port, url.path) == ("postgres", 5432, "/ivr")
        assert settings.store.revealed_password() == "db-password"
        assert settings.ami.host == "cluster-asterisk"
        assert settings.ami.secret is not None and settings.ami.secret.reveal() == b"ami-secret"
        # records PostgreSQL refuses wait in a journal on the node's own volume
        assert (settings.store.journal or "").startswith("/var/lib/ivr/")
        assert f"{node}-data:/var/lib/ivr" in service["volumes"]
    assert loaded["ivr-1"].node_id != loaded["ivr-2"].node_id
    one, two = (dict(services[n]["environment"]) for n in NODES)
    assert {k for k in one if one[k] != two[k]} == {"IVR_NODE_ID", "IVR_SPEECH_ADVERTISE_HOST"}
    postgres = services["postgres"]
    assert postgres["secrets"] == ["postgres-password"]
    assert postgres["environment"]["IVR_STORE_PASSWORD_FILE"] == one["IVR_STORE_PASSWORD_FILE"]
    assert "ivr-pgdata:/var/lib/postgresql/data" in postgres["volumes"]


def test_no_secret_in_the_compose_file(compose: dict[str, Any]) -> None:
    config = compose_config("--profile", "cluster")  # no IVR_* set: must still be valid
    for name, service in config["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search("SECRET|PASSWORD|TOKEN", key) and not key.endswith("_FILE"):
                assert not value, f"{name}: {key} has a value in the file"
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", str(value)), f"{name}: {key}"
    # the database password is a file the user creates, kept out of git
    source = compose["secrets"]["postgres-password"]["file"]
    assert source.startswith("./secrets/")
    tracked = subprocess.run(
        ["git", "ls-files", "secrets"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert tracked.stdout == ""


def test_images_are_built_here(services: dict[str, Any]) -> None:
    built = {s["image"] for s in services.values() if "build" in s}
    for name, service in services.items():
        assert "build" in service or service["image"] in built, name
    # the new images start from the same local Debian base as the Asterisk one
    base = re.findall(r"^FROM .*$", (REPO / "docker/asterisk.Dockerfile").read_text(), re.M)
    for name in ("dns", "postgres"):
        dockerfile = REPO / services[name]["build"]["dockerfile"]
        text = dockerfile.read_text()
        assert re.findall(r"^FROM .*$", text, re.M) == base, dockerfile
        for source in re.findall(r"^COPY (\S+)", text, re.M):
            assert (REPO / source).is_file(), source
    assert services["cluster-asterisk"]["build"] == services["asterisk"]["build"]
    assert services["cluster-asterisk"]["image"] == services["asterisk"]["image"]
    assert {services[n]["image"] for n in NODES} == {services["ivr"]["image"]}


def test_cluster_publishes_on_the_host_loopback_only() -> None:
    config = compose_config("--profile", "cluster")["services"]
    ports = {name: published(config[name]) for name in CLUSTER}
    assert ports["postgres"] == ports["dns"] == ports["cluster-caller"] == {}
    assert ports["ivr-1"] == {"127.0.0.1": {"8080/tcp"}}
    assert ports["ivr-2"] == {"127.0.0.1": {"8080/tcp"}}
    assert set(ports["cluster-asterisk"]) == {"127.0.0.1"}
    assert "5060/udp" in ports["cluster-asterisk"]["127.0.0.1"]
    for name in CLUSTER:  # AMI, FastAGI, AudioSocket, PostgreSQL, DNS: never on the host
        inside = set().union(*ports[name].values()) if ports[name] else set()
        assert not inside & {"5038/tcp", "4573/tcp", "4574/tcp", "5432/tcp", "53/udp"}, name
    # two consoles on distinct host ports, apart from the single node's 8080
    hosts = [p for n in NODES for p in config[n]["ports"]]
    assert len(set(map(str, hosts))) == 2 and not any(":8080:" in str(p) for p in hosts)
    exposed = compose_config("--profile", "cluster", IVR_SIP_PUBLISH_IP="0.0.0.0")["services"]
    assert "5060/udp" in published(exposed["cluster-asterisk"])["0.0.0.0"]
    for node in NODES:  # only the documented switch, and only for SIP/RTP
        assert set(published(exposed[node])) == {"127.0.0.1"}


def test_cluster_ami_is_the_lab_one_but_for_its_address(services: dict[str, Any]) -> None:
    """docker/manager-cluster.conf includes the lab's file and only adds the address."""
    lines = [line.split(";")[0].strip() for line in MANAGER.read_text().splitlines()]
    assert [line for line in lines if line] == [
        '#include "manager-lab.conf"',
        "[general](+)",  # appended to the included categories: later values win
        "bindaddr = 0.0.0.0",
        "[ivr](+)",
        *(f"permit = {_address(services[n])}/255.255.255.255" for n in NODES),
    ]
    lab = REPO / "asterisk-conf/manager.conf"
    assert _settings(lab, "deny") == ["0.0.0.0/0.0.0.0"]  # still first for user ivr
    volumes = services["cluster-asterisk"]["volumes"]
    assert "./docker/manager-cluster.conf:/etc/asterisk/manager.conf:ro" in volumes
    assert "./asterisk-conf/manager.conf:/etc/asterisk/manager-lab.conf:ro" in volumes
    assert not any("manager" in v for v in services["asterisk"]["volumes"])
