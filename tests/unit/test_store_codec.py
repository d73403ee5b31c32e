"""The ``calls`` row a record becomes: JSON columns as they have always been written, and
caller bytes that were not UTF-8 shown as escapes (SQLite cannot encode them)."""

from __future__ import annotations

import json
from dataclasses import asdict

from ivr.call.record import CallRecord, QueueVisit, SurveyAnswer, SurveyResult
from ivr.call.resume import ResumePoint
from ivr.store.codec import COLUMNS, decode, encode, encode_progress, encode_survey

QUEUE = QueueVisit("support", "answered", 3.5, "Local/1001@agents", 61.0, 2, 30.0)
SURVEY = SurveyResult(
    "post_call",
    "in_call",
    "partial",
    [SurveyAnswer("nps", "1-5", 4), SurveyAnswer("solved", "yes-no", None)],
    "nps",
    1_700_000_100.0,
    "comment.wav",
)


def record(**changes: object) -> CallRecord:
    base = CallRecord(
        call_id="1700000000.7",
        flow="main",
        flow_version="v1",
        caller="5551234",
        started_at=1_700_000_000.5,
        ended_at=1_700_000_090.0,
        language="zh",
        path=["welcome", "menu"],
        path_at=[0.0, 1.25],
        outcome="transferred",
        variables={"city": "上海"},
        queue=QUEUE,
        survey=SURVEY,
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def test_queue_and_survey_columns_are_what_asdict_gave() -> None:
    row = dict(zip(COLUMNS, encode(record()), strict=True))
    assert row["queue"] == json.dumps(asdict(QUEUE), ensure_ascii=False)
    assert row["survey"] == json.dumps(asdict(SURVEY), ensure_ascii=False)
    assert encode_survey(SURVEY) == row["survey"]
    assert row["variables"] == '{"city": "上海"}'  # UTF-8 text stays as it is
    assert decode(row) == record()


def test_caller_bytes_that_were_not_utf8_become_escapes() -> None:
    name = "Jos\udce9"  # b"Jos\xe9" read with surrogateescape
    row = dict(zip(COLUMNS, encode(record(caller=name, variables={"name": name})), strict=True))
    assert row["caller"] == "Jos\\xe9"
    assert json.loads(row["variables"]) == {"name": "Jos\\xe9"}
    row["caller"].encode("utf-8")  # what SQLite needs
    row["variables"].encode("utf-8")


def test_progress_carries_the_resume_point_compact() -> None:
    point = ResumePoint("main", "menu", variables={"city": "上海", "who": "Jos\udce9"})
    params = encode_progress(record(outcome=None), point)
    assert params[0] == "1700000000.7"
    resume = params[5]
    assert resume.startswith('{"flow":"main","node":"menu",')
    assert ResumePoint.from_json(resume).variables == {"city": "上海", "who": "Jos\\xe9"}
