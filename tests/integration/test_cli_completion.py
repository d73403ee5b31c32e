"""Shell completion of ``ivr`` the way bash asks for it (argcomplete's protocol): the
installed console script run with ``_ARGCOMPLETE=1``, ``COMP_LINE`` and ``COMP_POINT``, the
completions written to file descriptor 8."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IVR = Path(sys.executable).with_name("ivr")  # the console script of this venv


def complete(line: str, cwd: Path = ROOT, **env: str) -> list[str]:
    """What TAB offers at the end of ``line``."""
    read, write = os.pipe()
    shell_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "_ARGCOMPLETE"))},
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        **env,
    }
    # as bash's hook runs it: the script with its fd 8 on the pipe the shell reads
    shell = ["bash", "-c", f'exec "$0" 8>&{write}', str(IVR)]
    with subprocess.Popen(
        shell,
        cwd=cwd,
        env=shell_env,
        pass_fds=(write,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        os.close(write)
        with os.fdopen(read) as offered:
            text = offered.read()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return [c.strip() for c in text.split("\n") if c.strip()]


def test_the_console_script_carries_the_marker() -> None:
    """register-python-argcomplete completes only scripts whose module is marked."""
    check = [sys.executable, "-m", "argcomplete._check_console_script", str(IVR)]
    assert subprocess.run(check, capture_output=True, timeout=60).returncode == 0


def test_commands_and_options() -> None:
    assert complete("ivr s") == ["serve", "simulate", "schema", "stt"]
    assert set(complete("ivr lab ")) >= {"up", "down", "status", "cli", "call", "load"}
    assert "--http-stub" in complete("ivr simulate flows/main.yaml --")
    assert complete("ivr validate --format ") == ["text", "json", "github"]


def test_flow_names_from_the_flows_directory(tmp_path: Path) -> None:
    assert complete("ivr report --flow ") == ["bank", "main", "offer", "survey", "voice"]
    assert complete("ivr flows history b") == ["bank"]
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "sales.yaml").write_text("start: a\nnodes: {}\n")
    config = tmp_path / "ivr.yaml"
    config.write_text(f"flows_dir: {tmp_path / 'elsewhere'}\n")
    assert complete(f"ivr campaign start list.csv --config {config} --flow ") == ["sales"]


def test_node_ids_of_the_flow_given(tmp_path: Path) -> None:
    assert complete("ivr stt call.wav --flow flows/voice.yaml --node ") == ["menu"]
    flow = tmp_path / "ab.yaml"
    flow.write_text(
        "start: ab\nnodes:\n"
        "  ab: {split: [{percent: 50, goto: a}, {percent: 50, goto: b}]}\n"
        "  a: {play: {sound: beep}, next: hangup}\n"
        "  b: {play: {sound: beep}, next: hangup}\n"
    )
    assert complete("ivr report --flow ab --split ", cwd=tmp_path, IVR_FLOWS_DIR=".") == ["ab"]


@pytest.mark.parametrize(
    "line", ["ivr stt x.wav --flow missing.yaml --node ", "ivr report --flow "]
)
def test_nothing_to_offer_is_no_error(line: str, tmp_path: Path) -> None:
    assert complete(line, cwd=tmp_path) == []
