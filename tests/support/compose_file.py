"""docker-compose.yml for tests: the file as written, and as `docker-compose config` resolves it.

No Docker engine runs on the project's machines; Debian's docker-compose 1.29 (`make
compose-deps`) still resolves variables, profiles and YAML anchors exactly as `up` would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
PUBLISH = "${IVR_SIP_PUBLISH_IP:-127.0.0.1}"  # SIP and RTP: the host's loopback by default


def load_compose() -> dict[str, Any]:
    """docker-compose.yml as written (anchors and merge keys resolved by the YAML loader)."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def compose_config(*args: str, **env: str) -> dict[str, Any]:
    """`docker-compose [args] config` with these variables (and no IVR_* from the caller)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed: `make compose-deps` "
            "(apt-get install docker-compose) - CI installs it"
        )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    done = subprocess.run(
        [binary, "-f", str(COMPOSE), *args, "config"],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = yaml.safe_load(done.stdout)
    return data


def published(service: dict[str, Any]) -> dict[str, set[str]]:
    """host address -> container ports a resolved service publishes on it ("5060/udp", ...)."""
    out: dict[str, set[str]] = {}
    for port in service.get("ports", []):
        if isinstance(port, dict):  # the long syntax of newer compose versions
            host, target, proto = port.get("host_ip", ""), port["target"], port["protocol"]
        else:
            parts, _, proto = str(port).partition("/")
            host, target = parts.rsplit(":", 2)[0], parts.rsplit(":", 1)[1]
            proto = proto or "tcp"
        out.setdefault(host, set()).add(f"{target}/{proto}")
    return out
