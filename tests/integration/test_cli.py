"""The ivr command: validate, simulate, schema (in process, through ``ivr.cli.main``)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.instants import first_holiday, next_open_monday

from ivr.cli import main

ROOT = Path(__file__).resolve().parents[2]
BANK = str(ROOT / "flows/bank.yaml")
STUB = str(ROOT / "examples/http-stub.yaml")
# simulate --at pins the flow clock; the instants still come from now and the flow itself
OPEN_AT = next_open_monday(BANK, 10)  # a Monday morning in Shanghai, the bank open
OPEN = OPEN_AT.isoformat()
EVENING = OPEN_AT.replace(hour=22).isoformat()
HOLIDAY = f"{first_holiday(BANK).isoformat()}T10:00+08:00"


def test_validate_sample_flows_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "flows")]) == 0
    count = len(list((ROOT / "flows").glob("*.yaml")))
    assert f"{count} flow(s) valid" in capsys.readouterr().out


def test_validate_broken_copy_exits_1_with_file_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = Path(BANK).read_text(encoding="utf-8").replace("next: fetch_balance", "next: fetch")
    (tmp_path / "bank.yaml").write_text(text, encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "next: fetch" in t)
    assert err[0].startswith(f"{tmp_path / 'bank.yaml'}:{line}:")
    assert "node 'balance': goes to 'fetch'" in err[0]


def test_validate_empty_directory_is_an_error(tmp_path: Path) -> None:
    assert main(["validate", str(tmp_path)]) == 1


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["simulate", BANK, "--json", "--http-stub", STUB, *args]) == 0
    record: dict[str, object] = json.loads(capsys.readouterr().out)
    return record


@pytest.mark.parametrize(
    ("tokens", "at", "path_end", "outcome"),
    [
        (
            "1,1,12345678#,1,hangup",
            OPEN,
            ["fetch_balance", "tell_balance", "anything_else"],
            "self_service",
        ),
        ("1,1,99999999#,1", OPEN, ["fetch_balance", "lookup_failed", "agent"], "transferred"),
        ("1,2,answer", OPEN, ["main", "lost_card", "agent"], "transferred"),
        # no agent: the queue times out; a caller who wanted a person was not self-served
        ("1,2,busy,wait", OPEN, ["agents_busy", "offer_message", "goodbye"], "abandoned"),
        ("1,3,1", OPEN, ["offer", "offer_accepted", "agent"], "transferred"),
        ("1,3,9,0", OPEN, ["offer", "main", "agent"], "transferred"),
        ("2,0", OPEN, ["opening_hours", "main", "agent"], "transferred"),
        # closed, and no message left: the flow ends the call, the caller was not served
        ("wait,wait,wait", EVENING, ["closed", "offer_message", "goodbye"], "failed_in_ivr"),
        # closed: a message instead (1 keeps it: served)
        (
            "1,1,talk:6,#,1",
            EVENING,
            ["offer_message", "leave_message", "message_left", "goodbye"],
            "self_service",
        ),
        # 3 cancels the message
        ("1,1,talk:6,#,3", EVENING, ["offer_message", "leave_message", "goodbye"], "failed_in_ivr"),
        ("1,wait", HOLIDAY, ["holiday", "offer_message", "goodbye"], "failed_in_ivr"),
        ("1,5,5,5", OPEN, ["main", "agent"], "transferred"),
        ("1", OPEN, ["opening_hours", "main"], "abandoned"),
    ],
)
def test_simulate_walks_each_branch(
    capsys: pytest.CaptureFixture[str], tokens: str, at: str, path_end: list[str], outcome: str
) -> None:
    record = simulate(capsys, "--input", tokens, "--at", at)
    path = record["path"]
    assert isinstance(path, list)
    assert path[-len(path_end) :] == path_end
    assert record["outcome"] == outcome


def test_simulate_masks_the_account_number(capsys: pytest.CaptureFixture[str]) -> None:
    record = simulate(capsys, "--input", "1,1,12345678#,1,hangup", "--at", OPEN)
    assert "12345678" not in json.dumps(record)
    assert record["variables"]["account"] == "***"  # type: ignore[index]
    assert record["variables"]["balance"] == "1234.50"  # type: ignore[index]


def test_simulate_chinese_prompts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", BANK, "--input", "2,wait", "--at", OPEN]) == 0
    out = capsys.readouterr().out
    assert "余额查询请按1" in out
    assert "outcome: abandoned at 'main'" in out


def test_simulate_rejects_unknown_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", BANK, "--input", "1,x"]) == 2
    assert "'x' is not a caller action" in capsys.readouterr().err


def test_simulate_interactive_reads_the_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("1\n0\n"))
    assert main(["simulate", BANK, "--at", OPEN]) == 0
    out = capsys.readouterr().out
    assert "caller: 0" in out
    assert "outcome: transferred at 'agent'" in out


def test_simulate_broken_flow_prints_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.yaml").write_text("start: a\nnodes:\n  a: {play: 1}\n", encoding="utf-8")
    assert main(["simulate", str(tmp_path / "x.yaml"), "--input", "1"]) == 2
    assert "x.yaml:3:" in capsys.readouterr().err


def test_schema_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "ivr flow"


def test_console_script_runs() -> None:
    exe = Path(sys.executable).parent / "ivr"
    proc = subprocess.run(
        [str(exe), "validate", str(ROOT / "flows")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("stub", "where"),
    [
        ('"GET /a": &reply {available: "1"}\n"GET /b": *reply\n', "1:11"),
        ('"GET /a": {available: *nothing}\n', "1:23"),
    ],
    ids=["anchor", "alias"],
)
def test_simulate_refuses_anchors_and_aliases_in_the_http_stub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stub: str, where: str
) -> None:
    path = tmp_path / "stub.yaml"
    path.write_text(stub, encoding="utf-8")
    assert main(["simulate", BANK, "--input", "hangup", "--http-stub", str(path)]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first == (
        f"ivr: {path}:{where}: anchors and aliases are not allowed in HTTP stub "
        "files; write the value out"
    )


def test_log_lines_show_caller_bytes_that_are_not_utf8_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import logging

    from ivr.logs import setup_logging

    setup_logging("INFO")
    try:
        logging.getLogger("ivr.test").info("caller name %s", "Jos\udce9")
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    err = capsys.readouterr().err
    assert "caller name Jos\\xe9" in err and "\udce9" not in err
