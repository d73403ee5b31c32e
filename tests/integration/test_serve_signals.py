"""``ivr serve`` as a real process: SIGHUP reloads the flows, SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

FLOW = """\
start: hello
nodes:
  hello: {{play: {{sound: {sound}}}, next: hangup}}
"""


def wait_for(log: Path, pattern: str, timeout_s: float = 30) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := re.search(pattern, log.read_text(errors="replace")):
            return found
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in the log:\n{log.read_text(errors='replace')}")


def test_sighup_reloads_flows_and_sigterm_stops(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "tiny.yaml").write_text(FLOW.format(sound="beep"))
    config = tmp_path / "ivr.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "flows_dir": str(flows),
                "prompts_dir": str(tmp_path / "prompts"),
                "flows_poll_s": 0,  # no watcher: only SIGHUP (or the API) reloads
                "agi": {"port": 0},
                "admin": {"enabled": False},
                "store": {"path": str(tmp_path / "calls.sqlite3")},
            }
        )
    )
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ivr", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        first = wait_for(log, r"flows: tiny@(\w+)").group(1)
        wait_for(log, r"FastAGI listening")
        (flows / "tiny.yaml").write_text(FLOW.format(sound="vm-goodbye"))
        proc.send_signal(signal.SIGHUP)
        second = wait_for(log, r"flows reloaded \(SIGHUP\): tiny@(\w+)").group(1)
        assert second != first
        wait_for(log, r"SIGHUP: flow reload ok \(0 added, 1 changed, 0 removed\)")
        (flows / "broken.yaml").write_text("start: nowhere\nnodes: {}\n")
        proc.send_signal(signal.SIGHUP)  # a broken file is refused; tiny keeps serving
        wait_for(log, r"SIGHUP: flow reload (partial|error)")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert "Traceback" not in log.read_text(errors="replace")
