"""``log_format: json``: one object per line, the call id on a call's lines, no secret."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest

from ivr.call.record import MASK
from ivr.flow.redact import CallLog, redact
from ivr.logs import setup_logging


def read(capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_a_call_line_carries_the_call_id_and_no_sensitive_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("INFO", "json")
    try:
        pin = "4711"
        log = CallLog(logging.getLogger("ivr.runtime"), "1700000000.42", lambda t: redact(t, [pin]))
        log.warning("http GET /accounts/%s/balance failed", pin)
        logging.getLogger("ivr.app").info("flows: main@abc")
        logging.getLogger("ivr.app").debug("not at INFO")
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    call, other = read(capsys)
    assert call == {
        "time": call["time"],
        "level": "WARNING",
        "logger": "ivr.runtime",
        "message": f"http GET /accounts/{MASK}/balance failed",
        "call_id": "1700000000.42",
    }
    assert other == {
        "time": other["time"],
        "level": "INFO",
        "logger": "ivr.app",
        "message": "flows: main@abc",
    }
    when = datetime.fromisoformat(call["time"].replace("Z", "+00:00"))
    assert abs(when.timestamp() - datetime.now().timestamp()) < 60
    assert call["time"].endswith("Z") and len(call["time"]) == len("2026-01-01T00:00:00.000Z")


def test_a_traceback_and_caller_bytes_stay_inside_one_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("INFO", "json")
    try:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            logging.getLogger("ivr.app").exception("caller name %s", "Jos\udce9")
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    line = json.loads(err)
    assert line["message"] == "caller name Jos\\xe9"
    assert "ValueError: bad\nvalue" in line["exception"]


def test_text_lines_bracket_the_call_id(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO")
    try:
        CallLog(logging.getLogger("ivr.runtime"), "1700000000.42", str).info("menu")
        logging.getLogger("ivr.app").info("started")
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    call, other = capsys.readouterr().err.splitlines()
    assert call.endswith(" INFO ivr.runtime [1700000000.42] menu")
    assert other.endswith(" INFO ivr.app [-] started")
