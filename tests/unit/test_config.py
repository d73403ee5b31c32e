"""One typed configuration: defaults, YAML file, environment overrides, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import Secret, load_settings
from ivr.errors import ConfigError


def test_defaults_listen_on_loopback() -> None:
    s = load_settings(env={})
    assert (s.agi.host, s.agi.port) == ("127.0.0.1", 4573)
    assert s.store.path == "data/ivr.sqlite3"
    assert s.http.secret is None


def test_file_then_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("agi: {port: 4600, command_timeout_s: 10}\nflows_dir: /srv/flows\n")
    s = load_settings(cfg, env={"IVR_AGI_PORT": "4700", "IVR_STORE_PATH": "/tmp/x.db"})
    assert s.agi.port == 4700  # environment wins
    assert s.agi.command_timeout_s == 10.0
    assert s.flows_dir == "/srv/flows"
    assert s.store.path == "/tmp/x.db"


def test_unknown_keys_and_bad_types_are_named(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("agi: {prot: 1}\n")
    with pytest.raises(
        ConfigError,
        match=r"unknown setting agi\.prot \(did you mean agi\.port\?\); settings under agi: ",
    ):
        load_settings(cfg, env={})
    with pytest.raises(ConfigError, match="IVR_AGI_PORT must be a int, not 'x'"):
        load_settings(env={"IVR_AGI_PORT": "x"})


def test_secrets_come_from_env_or_file_and_never_show(tmp_path: Path) -> None:
    s = load_settings(env={"IVR_HTTP_SECRET": "s3cret"})
    assert s.http.secret == Secret(b"s3cret")
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.http)
    file = tmp_path / "secret"
    file.write_text("from-file\n")
    s = load_settings(env={"IVR_HTTP_SECRET_FILE": str(file)})
    assert s.http.secret is not None and s.http.secret.reveal() == b"from-file"
    with pytest.raises(ConfigError, match="IVR_HTTP_SECRET_FILE: cannot read"):
        load_settings(env={"IVR_HTTP_SECRET_FILE": str(tmp_path / "missing")})


def test_secrets_in_the_file_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("http: {secret: oops}\n")
    with pytest.raises(ConfigError, match=r"put http\.secret in the environment"):
        load_settings(cfg, env={})


def test_agi_playback_bound_for_prompts_of_unknown_length() -> None:
    assert load_settings(env={}).agi.unknown_prompt_s == 300.0
    s = load_settings(env={"IVR_AGI_UNKNOWN_PROMPT_S": "900"})
    assert s.agi.unknown_prompt_s == 900.0


def test_agi_connection_cap() -> None:
    assert load_settings(env={}).agi.max_connections == 2000
    assert load_settings(env={"IVR_AGI_MAX_CONNECTIONS": "500"}).agi.max_connections == 500


# --- anchors, aliases and deep nesting: refused like in flows ------------------------------


def laughs(levels: int = 9) -> str:
    """A billion laughs under ``variables:``: 9**levels values once expanded. The first anchor
    is at line 2, column 7."""
    lines = ["  a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "variables:\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        (
            laughs(),
            "2:7",
            "anchors and aliases are not allowed in the configuration; write the value out",
        ),
        (
            "agi: {port: 4600}\nflows_dir: *dir\n",
            "2:12",
            "anchors and aliases are not allowed in the configuration; write the value out",
        ),
        ("flows_dir: " + "[" * 5000 + "]" * 5000 + "\n", "1:", "values nested too deeply"),
    ],
    ids=["billion-laughs", "alias", "deep"],
)
def test_anchors_aliases_and_deep_nesting_are_refused_with_file_and_line(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    assert str(info.value).startswith(f"{cfg}:{where}")
    assert what in str(info.value)


def test_the_configuration_is_still_read_as_yaml_1_1(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("agi: {port: 4600}\nadmin: {open_read: on}\n")  # `on` is true in YAML 1.1
    s = load_settings(cfg, env={})
    assert s.agi.port == 4600 and s.admin.open_read is True


def test_the_commit_window_is_bounded() -> None:
    assert load_settings(env={}).store.commit_window_s == 0.1
    assert load_settings(env={"IVR_STORE_COMMIT_WINDOW_S": "0"}).store.commit_window_s == 0
    for bad in ("-0.1", "5"):
        with pytest.raises(ConfigError, match="commit_window_s"):
            load_settings(env={"IVR_STORE_COMMIT_WINDOW_S": bad})


def test_the_store_on_postgresql_takes_its_password_from_the_environment(tmp_path: Path) -> None:
    url = "postgresql://ivr@db.internal:5432/ivr"
    s = load_settings(env={"IVR_STORE_URL": url, "IVR_STORE_PASSWORD": "pw-123"})
    assert (s.store.target, s.store.revealed_password()) == (url, "pw-123")
    assert "pw-123" not in repr(s)
    assert load_settings(env={}).store.target == "data/ivr.sqlite3"  # SQLite by default
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("store:\n  password: hunter2\n")
    with pytest.raises(ConfigError, match="IVR_STORE_PASSWORD"):
        load_settings(cfg, env={})
    for bad, why in (
        ("postgresql://ivr:hunter2@db/ivr", "holds a password"),
        ("mysql://ivr@db/ivr", "postgresql://"),
        ("db.internal", "postgresql://"),
    ):
        with pytest.raises(ConfigError, match=why) as caught:
            load_settings(env={"IVR_STORE_URL": bad})
        assert "hunter2" not in str(caught.value)
