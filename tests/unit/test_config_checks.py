"""Settings refused at start with a message that says what to write instead: log level and
format, ports, hosts, misspelt keys; misspelt ``IVR_*`` variables warned about."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import environment_warnings, load_settings
from ivr.config_env import OTHER_VARIABLES
from ivr.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"IVR_LOG_LEVEL": "LOUD"},
            "IVR_LOG_LEVEL: 'LOUD' is not a log level; use one of DEBUG, INFO, WARNING, ERROR",
        ),
        ({"IVR_LOG_FORMAT": "xml"}, "IVR_LOG_FORMAT: 'xml' is not a log format; use text or json"),
        (
            {"IVR_AGI_PORT": "70000"},
            "IVR_AGI_PORT: 70000 is not a port; use 1-65535 (0: any free port)",
        ),
        (
            {"IVR_ADMIN_PORT": "-1"},
            "IVR_ADMIN_PORT: -1 is not a port; use 1-65535 (0: any free port)",
        ),
        ({"IVR_AMI_PORT": "0"}, "IVR_AMI_PORT: 0 is not a port; use 1-65535"),
        (
            {"IVR_AGI_HOST": "127.0.0.1:4573"},
            "IVR_AGI_HOST: '127.0.0.1:4573' is not a host name or IP address "
            "(the port goes in agi.port)",
        ),
        ({"IVR_AMI_HOST": ""}, "IVR_AMI_HOST: '' is not a host name or IP address"),
        (
            {"IVR_SPEECH_ADVERTISE_HOST": "tcp://ivr-1"},
            "IVR_SPEECH_ADVERTISE_HOST: 'tcp://ivr-1' is not a host name or IP address",
        ),
        ({"IVR_ADMIN_HOST": "[::1]"}, "IVR_ADMIN_HOST: '[::1]' is not a host name or IP address"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_bad_values_from_the_environment(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env=env)
    assert str(refused.value) == message


def test_bad_values_in_the_file_name_the_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("log_level: LOUD\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(cfg, env={})
    assert str(refused.value) == (
        f"{cfg}: log_level: 'LOUD' is not a log level; use one of DEBUG, INFO, WARNING, ERROR"
    )
    cfg.write_text("speech: {port: 65536}\n")
    with pytest.raises(ConfigError, match=r"ivr\.yaml: speech\.port: 65536 is not a port"):
        load_settings(cfg, env={})


@pytest.mark.parametrize(
    "env",
    [
        {"IVR_LOG_LEVEL": "debug", "IVR_LOG_FORMAT": "json"},
        {"IVR_AGI_PORT": "0", "IVR_ADMIN_PORT": "65535", "IVR_AMI_PORT": "1"},
        {"IVR_AGI_HOST": "0.0.0.0", "IVR_SPEECH_HOST": "::", "IVR_AMI_HOST": "cluster-asterisk"},
        {"IVR_SPEECH_ADVERTISE_HOST": "ivr-1", "IVR_ADMIN_HOST": "ops.example.com."},
        {"IVR_AMI_HOST": "_ami._tcp.example.com"},
    ],
)
def test_good_values_pass(env: dict[str, str]) -> None:
    load_settings(env=env)


def test_log_format_defaults_to_text_and_is_read_from_the_file(tmp_path: Path) -> None:
    assert load_settings(env={}).log_format == "text"
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("log_format: json\n")
    assert load_settings(cfg, env={}).log_format == "json"


def test_unknown_keys_suggest_the_setting(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("log_levl: DEBUG\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(cfg, env={})
    assert str(refused.value).startswith(
        f"{cfg}: unknown setting log_levl (did you mean log_level?); top-level settings: admin, "
    )
    cfg.write_text("admin: {tokn: x, colour: red}\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(cfg, env={})
    assert str(refused.value).startswith(
        f"{cfg}: unknown setting admin.colour, admin.tokn (did you mean admin.token?); "
        "settings under admin: allowed_hosts, enabled, host, "
    )


def test_misspelt_variables_are_warned_about_with_a_suggestion() -> None:
    env = {
        "IVR_LOG_LEVL": "DEBUG",
        "IVR_ADMIN_TOKN": "x",
        "IVR_FROBNICATE": "1",
        "PATH": "/usr/bin",  # not ours
        "IVR_AGI_PORT": "4573",
        "IVR_HTTP_SECRET_FILE": "/run/secrets/http",
    }
    assert environment_warnings(env) == [
        "IVR_ADMIN_TOKN is not a setting; did you mean IVR_ADMIN_TOKEN or IVR_ADMIN_TOKEN_FILE?",
        "IVR_FROBNICATE is not a setting; it is ignored",
        "IVR_LOG_LEVL is not a setting; did you mean IVR_LOG_LEVEL?",
    ]


def test_the_projects_other_variables_are_not_warned_about() -> None:
    env = dict.fromkeys(OTHER_VARIABLES, "x")
    env["IVR_SIP_1001_PASSWORD"] = "x"
    assert environment_warnings(env) == []


def test_every_ivr_variable_in_the_repository_is_known() -> None:
    """A variable added anywhere (compose, dialplan, docs, tests) must be a setting or listed
    in ivr.config_env.OTHER_VARIABLES, or ``ivr serve`` would warn about it."""
    import re

    found: set[str] = set()
    for pattern in ("*.py", "*.conf", "*.yml", "*.yaml", "*.sh", "*.md", "Makefile", "*.mk"):
        for path in ROOT.glob(f"**/{pattern}"):
            if {".venv", ".git", "node_modules", ".lab"} & set(path.parts) or not path.is_file():
                continue
            found |= set(
                re.findall(r"\bIVR_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="replace"))
            )
    # name patterns in prose, and what tests set on purpose to check this warning
    found -= {"IVR_LOG_LEVL", "IVR_ADMIN_TOKN", "IVR_FROBNICATE"}
    unknown = environment_warnings(dict.fromkeys(found, "x"))
    assert unknown == []
