"""docker-compose.yml agrees with the chroot lab: same asterisk-conf/, ports and mounts.

No Docker engine runs on the project's machines, so the file is checked statically (PyYAML)
and with `docker-compose config -q` (Debian's docker-compose 1.29: `make compose-deps`).
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.lab import chroot

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _rtp_range() -> tuple[int, int]:
    text = (REPO / "asterisk-conf/rtp.conf").read_text()
    start = re.search(r"^rtpstart\s*=\s*(\d+)", text, re.M)
    end = re.search(r"^rtpend\s*=\s*(\d+)", text, re.M)
    assert start and end
    return int(start.group(1)), int(end.group(1))


def test_services_exist(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"asterisk", "ivr", "caller"}
    for name in ("asterisk", "ivr"):
        assert "test" in compose["services"][name]["healthcheck"], name


def test_asterisk_ports_match_lab_config(compose: dict[str, Any]) -> None:
    ports = compose["services"]["asterisk"]["ports"]
    lab_sip = [p for proto, addr, p in chroot.PORTS if addr == "0.0.0.0" and proto == "udp"]
    assert lab_sip == [5060]
    assert "5060:5060/udp" in ports
    start, end = _rtp_range()
    assert f"{start}-{end}:{start}-{end}/udp" in ports
    dockerfile = (REPO / "docker/asterisk.Dockerfile").read_text()
    assert f"EXPOSE 5060/udp {start}-{end}/udp" in dockerfile
    # 5080 (SIPp) and 5038 (AMI) are loopback-only, never published
    assert not any(p.startswith(("5080", "5038")) for p in ports)


def test_same_asterisk_conf_and_packages_as_lab() -> None:
    dockerfile = (REPO / "docker/asterisk.Dockerfile").read_text()
    assert "FROM debian:sid" in dockerfile and chroot.SUITE == "sid"
    assert "COPY asterisk-conf/*.conf /etc/asterisk/" in dockerfile
    for package in chroot.PACKAGES:
        assert re.search(rf"\b{re.escape(package)}\b", dockerfile), package
    entry = (REPO / "docker/asterisk-entrypoint.sh").read_text()
    confs = "".join(p.read_text() for p in (REPO / "asterisk-conf").glob("*.conf"))
    includes = re.findall(r'#include "(secrets/[^"]+)"', confs)
    assert len(includes) == 3
    for include in includes:
        assert f"/etc/asterisk/{include}" in entry, include


def test_prompts_and_data_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert f"./prompts:/{chroot.SOUNDS_SUBDIR}:ro" in services["asterisk"]["volumes"]
    assert "ivr-data:/var/lib/ivr" in services["ivr"]["volumes"]
    assert "ivr-data" in compose["volumes"]


def test_ivr_and_caller_share_the_asterisk_loopback(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["ivr"]["command"] == ["ivr", "serve", "--config", "/etc/ivr/ivr.yaml"]
    for name in ("ivr", "caller"):
        assert services[name]["network_mode"] == "service:asterisk", name
    # the dialplan reads IVR_AGI_HOST; with a shared namespace that is the loopback
    assert services["asterisk"]["environment"]["IVR_AGI_HOST"] == "127.0.0.1"
    assert "ENV(IVR_AGI_HOST)" in (REPO / "asterisk-conf/extensions.conf").read_text()
    assert services["caller"]["entrypoint"] == ["python", "-m", "ivr.lab"]


def test_manager_is_loopback_only() -> None:
    parser = configparser.ConfigParser(strict=False, comment_prefixes=(";", "#"),
                                       inline_comment_prefixes=(";",))
    parser.read_string((REPO / "asterisk-conf/manager.conf").read_text())
    assert parser["general"]["bindaddr"] == "127.0.0.1"
    assert parser["general"]["port"] == "5038"
    assert "secret" not in parser["ivr"]  # comes from secrets/ami-ivr.conf


def test_docker_compose_config_is_valid() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: `make compose-deps` "
                    "(apt-get install docker-compose) - CI installs it")
    env = {**os.environ, "IVR_AMI_SECRET": "test-only"}
    done = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_ivr_stop_grace_outlasts_the_shutdown_grace(compose: dict[str, Any]) -> None:
    """SIGTERM lets calls finish for agi.shutdown_grace_s; compose must not SIGKILL before."""
    from ivr.config import AgiSettings

    grace = compose["services"]["ivr"]["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) > AgiSettings().shutdown_grace_s
