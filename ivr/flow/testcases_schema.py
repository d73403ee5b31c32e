"""The JSON Schema of flow test files (``flows/tests/<flow>.yaml``), for editors: built from
the keys :mod:`ivr.flow.testcases` reads, so the two cannot drift. ``ivr test --schema``
prints it; ``flows/tests/schema.json`` is a copy the sample test files point at."""

from __future__ import annotations

from typing import Any

from ivr.flow.testcases import EXPECT_KEYS, JOURNEY_KEYS, QUEUE_KEYS

__all__ = ["cases_schema"]

_TEXT = {"type": ["string", "number"]}
_TEXTS = {"type": "array", "items": _TEXT}
_MAP = {"type": "object", "additionalProperties": _TEXT}
_JOURNEY: dict[str, dict[str, Any]] = {
    "input": {
        "description": 'What the caller does, as ivr simulate --input: "1, wait, say:sales, '
        'unsure:support, talk:5, hold:1, busy, answer, hangup" (or a list of these)',
        "anyOf": [{"type": "string"}, _TEXTS],
    },
    "at": {
        "description": "When the call happens: 2027-01-04T10:00 (the flow's timezone), today "
        "10:00, tomorrow 10:00, next monday|weekday|weekend|holiday 10:00",
        "type": "string",
    },
    "caller": {"description": "Caller id (default 5550100)", **_TEXT},
    "dnis": {"description": "Dialled number", **_TEXT},
    "params": {"description": "Call variables (a campaign list's columns)", **_MAP},
    "http": {
        "description": 'HTTP lookups\' answers: "GET /accounts/1/balance": {available: 10}; '
        "a lookup without one fails (its on_error)",
        "type": "object",
    },
    "queue": {
        "description": "What AMI says about agent queues (without it: not checked)",
        "type": "object",
        "properties": {key: {"type": "number", "minimum": 0} for key in QUEUE_KEYS},
        "additionalProperties": False,
    },
}
_EXPECT: dict[str, dict[str, Any]] = {
    "path": {"description": "Exactly the nodes walked", **_TEXTS},
    "path_contains": {"description": "These nodes, in this order, among others", **_TEXTS},
    "outcome": {
        "description": "self_service, failed_in_ivr, transferred, abandoned, error",
        "type": "string",
    },
    "end_node": {"description": "The node the call ended in", "type": "string"},
    "variables": {"description": "Flow variables at the end (a subset)", **_MAP},
    "heard": {"description": "Pieces of what the caller heard, in this order", **_TEXTS},
    "not_heard": {"description": "Pieces the caller must not hear", **_TEXTS},
    "inputs": {
        "description": "Caller inputs the record keeps, in order: {node, kind, value}",
        "type": "array",
        "items": _MAP,
    },
}


def cases_schema() -> dict[str, Any]:
    """The schema (draft 2020-12)."""
    journey = {k: _JOURNEY[k] for k in JOURNEY_KEYS}
    case = {
        "type": "object",
        "properties": {
            "name": {"description": "What the case checks", "type": "string"},
            **journey,
            "expect": {
                "type": "object",
                "properties": {k: _EXPECT[k] for k in EXPECT_KEYS},
                "additionalProperties": False,
            },
        },
        "required": ["expect"],
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ivr flow tests",
        "type": "object",
        "properties": {
            "flow": {"description": "The flow tested (default: the file's name)", "type": "string"},
            "defaults": {"type": "object", "properties": journey, "additionalProperties": False},
            "cases": {"type": "array", "items": case, "minItems": 1},
        },
        "required": ["cases"],
        "additionalProperties": False,
    }
