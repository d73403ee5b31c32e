"""``ivr serve`` as a real process: settings refused before it starts, misspelt variables
warned about, and ``log_format: json`` lines (the call id on a call's lines, no PIN)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from support.fake_asterisk import run_fake_call

FLOW = """\
start: pin
nodes:
  pin:
    collect:
      prompt: {sound: beep}
      into: pin
      digits: {min: 4, max: 4, end: "#"}
      sensitive: true
      otherwise: bye
    next: bye
  bye: {play: {sound: vm-goodbye}, next: hangup}
"""
PIN = "4711"


def _env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    return {**env, **more}


def _config(tmp_path: Path, **more: object) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "pin.yaml").write_text(FLOW)
    config = tmp_path / "ivr.yaml"
    settings = {
        "flows_dir": str(flows),
        "prompts_dir": str(tmp_path / "prompts"),
        "flows_poll_s": 0,
        "agi": {"port": 0},
        "admin": {"enabled": False},
        "store": {"path": str(tmp_path / "calls.sqlite3")},
        **more,
    }
    config.write_text(yaml.safe_dump(settings))
    return config


def test_a_bad_log_level_is_refused_before_anything_starts(tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "ivr", "serve", "--config", str(config)],
        env=_env(IVR_LOG_LEVEL="LOUD"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "ivr: IVR_LOG_LEVEL: 'LOUD' is not a log level; use one of DEBUG, INFO, WARNING, ERROR\n"
    )
    assert not (tmp_path / "calls.sqlite3").exists()  # refused before the store opened


def _lines(log: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _wait_for(log: Path, pattern: str, timeout_s: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in _lines(log):
            if re.search(pattern, line["message"]):
                return line
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in the log:\n{log.read_text()}")


def test_json_logs_with_the_call_id_and_a_warning_for_a_misspelt_variable(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, log_format="json")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ivr", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(IVR_LOG_LEVL="DEBUG", IVR_AGI_SERVICE="ivr.cluster"),
        )
    try:
        warning = _wait_for(log, "IVR_LOG_LEVL")
        listening = _wait_for(log, r"FastAGI listening on 127\.0\.0\.1:\d+")
        port = int(listening["message"].rpartition(":")[2])
        digits = [*PIN, "#"]
        call = asyncio.run(run_fake_call("127.0.0.1", port, script="pin", digits=digits))
        assert call.closed_by_server
        uniqueid = call.env["agi_uniqueid"]
        _wait_for(log, "dtmf at pin")
        # one line says what the call came to
        ended = _wait_for(log, r"^call ended: ")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert warning == {
        "time": warning["time"],
        "level": "WARNING",
        "logger": "ivr.config",
        "message": "IVR_LOG_LEVL is not a setting; did you mean IVR_LOG_LEVEL?",
    }  # and nothing about IVR_AGI_SERVICE, which the dialplan reads
    lines = _lines(log)  # every line is one JSON object
    assert not [w for w in lines if "IVR_AGI_SERVICE" in w["message"]]
    about_call = [line for line in lines if line.get("call_id") == uniqueid]
    assert any(line["message"] == "dtmf at pin: ***" for line in about_call), about_call
    assert {"time", "level", "logger", "message"} <= set(about_call[0])
    assert ended["call_id"] == uniqueid
    assert re.fullmatch(
        r"call ended: failed_in_ivr at bye after \d+\.\d s \(\d+ nodes\)", ended["message"]
    )
    assert not [line for line in lines if PIN in line["message"]]  # (a port may hold 4711)
