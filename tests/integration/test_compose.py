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
from support.compose_file import COMPOSE, PUBLISH, REPO, compose_config, load_compose
from support.compose_file import published as _published_by

from ivr.lab.asterisk_process import PORTS as LAB_PORTS
from ivr.lab.paths import SOUNDS_SUBDIR

IVR_GID = 10001  # docker/ivr.Dockerfile's user ivr


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def _rtp_range() -> tuple[int, int]:
    text = (REPO / "asterisk-conf/rtp.conf").read_text()
    start = re.search(r"^rtpstart\s*=\s*(\d+)", text, re.M)
    end = re.search(r"^rtpend\s*=\s*(\d+)", text, re.M)
    assert start and end
    return int(start.group(1)), int(end.group(1))


def test_services_exist(compose: dict[str, Any]) -> None:
    # the single-node stack; the cluster profile's services: test_compose_cluster.py
    single = {
        name
        for name, service in compose["services"].items()
        if "cluster" not in service.get("profiles", [])
    }
    assert single == {"asterisk", "ivr", "caller"}
    for name in ("asterisk", "ivr"):
        assert "test" in compose["services"][name]["healthcheck"], name


def test_asterisk_ports_match_lab_config(compose: dict[str, Any]) -> None:
    ports = compose["services"]["asterisk"]["ports"]
    lab_sip = [p for proto, addr, p in LAB_PORTS if addr == "0.0.0.0" and proto == "udp"]
    assert lab_sip == [5060]
    assert f"{PUBLISH}:5060:5060/udp" in ports
    start, end = _rtp_range()
    assert f"{PUBLISH}:{start}-{end}:{start}-{end}/udp" in ports
    dockerfile = (REPO / "docker/asterisk.Dockerfile").read_text()
    assert f"EXPOSE 5060/udp {start}-{end}/udp" in dockerfile
    # 5080 (SIPp) and 5038 (AMI) are loopback-only, never published
    assert not any(":5080" in p or ":5038" in p or p.startswith(("5080", "5038")) for p in ports)
    # nothing but the documented switch publishes on another address
    assert all(p.startswith((PUBLISH, "127.0.0.1:")) for p in ports), ports


def _config(**env: str) -> dict[str, Any]:
    """`docker-compose config` with these variables (and no IVR_* from the caller)."""
    return compose_config(**env)


def _published(config: dict[str, Any]) -> dict[str, set[str]]:
    """host address -> container ports the asterisk service publishes on it."""
    return _published_by(config["services"]["asterisk"])


def test_sip_and_rtp_are_published_on_loopback_unless_switched() -> None:
    start, end = _rtp_range()
    default = _published(_config())
    assert set(default) == {"127.0.0.1"}, default
    assert {"5060/udp", f"{start}/udp", f"{end}/udp", "8080/tcp"} <= default["127.0.0.1"]
    assert f"{end + 1}/udp" not in default["127.0.0.1"]
    exposed = _published(_config(IVR_SIP_PUBLISH_IP="0.0.0.0"))
    assert {"5060/udp", f"{start}/udp", f"{end}/udp"} <= exposed["0.0.0.0"]
    assert exposed["127.0.0.1"] == {"8080/tcp"}  # the console stays on the host


def test_no_secret_needed_to_start_and_the_ivr_reads_the_generated_one(
    compose: dict[str, Any],
) -> None:
    config = _config()  # no IVR_AMI_SECRET, no password: must still be valid
    asterisk, ivr = config["services"]["asterisk"], config["services"]["ivr"]
    for name in ("IVR_AMI_SECRET", "IVR_SIP_1001_PASSWORD", "IVR_SIP_1002_PASSWORD"):
        assert not asterisk["environment"].get(name), name  # empty: generated
    assert "IVR_AMI_SECRET" not in ivr["environment"]
    assert ivr["environment"]["IVR_AMI_SECRET_FILE"] == "/var/lib/ivr-secrets/ami-secret"
    raw = compose["services"]
    assert "ivr-secrets:/var/lib/ivr-secrets" in raw["asterisk"]["volumes"]
    assert "ivr-secrets:/var/lib/ivr-secrets:ro" in raw["ivr"]["volumes"]
    assert "ivr-secrets" in compose["volumes"]


def _entrypoint(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    etc = tmp_path / "etc"
    if not etc.exists():
        etc.mkdir()
        for conf in (REPO / "asterisk-conf").glob("*.conf"):
            shutil.copy(conf, etc / conf.name)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    return subprocess.run(
        ["sh", str(REPO / "docker/asterisk-entrypoint.sh"), "echo", "asterisk runs"],
        env={
            **clean,
            "IVR_SECRETS_DIR": str(tmp_path / "secrets"),
            "ASTERISK_ETC": str(etc),
            "ASTERISK_RUN": str(tmp_path / "run"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


def _written(tmp_path: Path) -> dict[str, str]:
    secrets = tmp_path / "etc/secrets"
    assert secrets.stat().st_mode & 0o777 == 0o700
    out = {}
    for conf in secrets.iterdir():
        assert conf.stat().st_mode & 0o777 == 0o600, conf
        out[conf.stem] = conf.read_text().strip()
    return out


def test_entrypoint_generates_secrets_at_first_start(tmp_path: Path) -> None:
    first = _entrypoint(tmp_path)
    store = tmp_path / "secrets/secrets.env"
    assert store.stat().st_mode & 0o777 == 0o600
    # the ivr containers' group (gid 10001, not root) may enter and read ami-secret only
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "secrets").stat().st_gid == IVR_GID
    assert "generated" in first.stdout and str(store) in first.stdout
    assert first.stdout.strip().endswith("asterisk runs")  # then execs the command
    written = _written(tmp_path)
    # every secret the configuration #includes, with a random 128-bit value
    confs = "".join(p.read_text() for p in (REPO / "asterisk-conf").glob("*.conf"))
    includes = {Path(i).stem for i in re.findall(r'#include "(secrets/[^"]+)"', confs)}
    assert set(written) == includes == {"ami-ivr", "sip-1001", "sip-1002"}
    values = {name: line.split(" = ")[1] for name, line in written.items()}
    assert all(re.fullmatch(r"[0-9a-f]{32}", v) for v in values.values()), values
    assert len(set(values.values())) == 3
    assert written["ami-ivr"].startswith("secret = ")
    assert written["sip-1001"].startswith("password = ")
    ami = tmp_path / "secrets/ami-secret"
    assert ami.read_text().strip() == values["ami-ivr"]
    assert ami.stat().st_mode & 0o777 == 0o640 and ami.stat().st_gid == IVR_GID
    # the next start keeps them and says where they are
    again = _entrypoint(tmp_path)
    assert "generated" not in again.stdout and str(store) in again.stdout
    assert _written(tmp_path) == written
    # a variable in the environment wins
    _entrypoint(tmp_path, IVR_SIP_1002_PASSWORD="chosen", IVR_AMI_SECRET="mine")
    chosen = _written(tmp_path)
    assert chosen["sip-1002"] == "password = chosen"
    assert chosen["sip-1001"] == written["sip-1001"]
    assert ami.read_text().strip() == "mine"


def test_prompts_and_data_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    prompts = "${IVR_PROMPTS_DIR:-./prompts}"  # rendered by the server, played by Asterisk
    assert f"{prompts}:/{SOUNDS_SUBDIR}:ro" in services["asterisk"]["volumes"]
    assert f"{prompts}:/app/prompts" in services["ivr"]["volumes"]
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
    parser = configparser.ConfigParser(
        strict=False, comment_prefixes=(";", "#"), inline_comment_prefixes=(";",)
    )
    parser.read_string((REPO / "asterisk-conf/manager.conf").read_text())
    assert parser["general"]["bindaddr"] == "127.0.0.1"
    assert parser["general"]["port"] == "5038"
    assert "secret" not in parser["ivr"]  # comes from secrets/ami-ivr.conf


def test_docker_compose_config_is_valid() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed: `make compose-deps` "
            "(apt-get install docker-compose) - CI installs it"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}  # none needed
    done = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_ivr_stop_grace_outlasts_the_shutdown_grace(compose: dict[str, Any]) -> None:
    """SIGTERM lets calls finish for agi.shutdown_grace_s; compose must not SIGKILL before."""
    from ivr.config import AgiSettings

    grace = compose["services"]["ivr"]["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) > AgiSettings().shutdown_grace_s


@pytest.mark.parametrize(
    ("writer", "readers"), [("asterisk", ["ivr"]), ("cluster-asterisk", ["ivr-1", "ivr-2"])]
)
def test_asterisk_writes_recordings_where_the_server_reads_them(
    compose: dict[str, Any], writer: str, readers: list[str]
) -> None:
    """Messages (RECORD FILE) and call recordings (MixMonitor) are paths the server hands
    Asterisk: one volume at one path in both, and the server's recordings_dir is that path."""
    services = compose["services"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in services[writer]["volumes"]}
    for reader in readers:
        path = services[reader]["environment"]["IVR_RECORDINGS_DIR"]
        theirs = {m.split(":")[0]: m.split(":")[1] for m in services[reader]["volumes"]}
        shared = [v for v, at in theirs.items() if at == path and mounts.get(v) == path]
        assert shared, f"{reader}: {path} is not a volume {writer} mounts at the same path"


def test_ivr_healthcheck_asks_healthz_not_fastagi(compose: dict[str, Any]) -> None:
    """A bare connection to FastAGI every 10 s was logged at INFO; /healthz is not logged."""
    for name in ("ivr", "ivr-1", "ivr-2"):
        test = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert "http://127.0.0.1:8080/healthz" in test and "4573" not in test, name
    dockerfile = (REPO / "docker/ivr.Dockerfile").read_text()
    health = dockerfile.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    assert "/healthz" in health and "4573" not in health


def test_containers_do_not_run_as_root() -> None:
    ivr = (REPO / "docker/ivr.Dockerfile").read_text()
    assert re.search(r"^USER ivr$", ivr, re.M)
    assert '--uid "$IVR_UID"' in ivr and f"ARG IVR_UID={IVR_GID}" in ivr
    asterisk = (REPO / "docker/asterisk.Dockerfile").read_text()
    assert 'CMD ["asterisk", "-f", "-U", "asterisk", "-G", "asterisk"]' in asterisk


def test_vosk_model_is_a_checked_build_option(compose: dict[str, Any]) -> None:
    dockerfile = (REPO / "docker/ivr.Dockerfile").read_text()
    assert re.search(r"^ARG VOSK_MODEL=$", dockerfile, re.M)  # off unless asked for
    assert re.search(r"^ARG VOSK_MODEL_SHA256=[0-9a-f]{64}$", dockerfile, re.M)
    assert "sha256sum -c -" in dockerfile
    download = dockerfile.index("curl -fsSL")
    assert dockerfile.index('if [ -n "$VOSK_MODEL" ]') < download < dockerfile.index("unzip -q")
    assert compose["services"]["ivr"]["build"]["args"] == {"VOSK_MODEL": "${VOSK_MODEL:-}"}


def test_env_example_names_every_variable_with_no_value() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    lines = (REPO / ".env.example").read_text().splitlines()
    settings = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert set(settings) == used
    assert all(value == "" for value in settings.values()), settings  # no secret, no choice
