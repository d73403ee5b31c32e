"""The flow language's JSON Schema (shipped as ``schema.json``) and friendly error messages."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from ivr.flow.source import Path


@cache
def flow_schema() -> dict[str, Any]:
    """The JSON Schema of a flow file (also served to editors and the admin API)."""
    text = resources.files("ivr.flow").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _top_validator() -> jsonschema.Draft202012Validator:
    # Nodes are checked one by one against their kind's schema: oneOf over all kinds gives
    # useless messages ("is not valid under any of the given schemas").
    schema = copy.deepcopy(flow_schema())
    schema["properties"]["nodes"]["additionalProperties"] = {"type": "object"}
    return jsonschema.Draft202012Validator(schema)


@cache
def _node_validator(kind: str) -> jsonschema.Draft202012Validator:
    defs = flow_schema()["$defs"]
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{kind}_node", "$defs": defs})


def top_level_errors(data: Any) -> list[tuple[Path, str]]:
    """Schema errors outside the nodes, as (path, message)."""
    return [(_path(e), friendly(e)) for e in _top_validator().iter_errors(data)]


def node_errors(kind: str, node: Any) -> list[tuple[Path, str]]:
    """Schema errors of one node of a known kind, paths relative to the node."""
    errors = sorted(_node_validator(kind).iter_errors(node), key=lambda e: e.path)
    return [(_path(e), friendly(e)) for e in errors]


def _path(error: ValidationError) -> Path:
    """Where to point: an unknown key itself rather than the mapping holding it."""
    path: Path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _properties(error)
        unknown = sorted(k for k in error.instance if k not in allowed)
        if unknown:
            return (*path, unknown[0], "<key>")
    return path


def _properties(error: ValidationError) -> list[str]:
    schema = error.schema
    return sorted(schema.get("properties", {})) if isinstance(schema, dict) else []


def friendly(error: ValidationError) -> str:
    """Turn a jsonschema error into a message an ops person can act on."""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _properties(error)
        unknown = ", ".join(repr(u) for u in sorted(set(error.instance) - set(allowed)))
        return f"unknown key {unknown}; allowed here: {', '.join(allowed)}"
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return f"missing required key '{missing}'"
    if error.validator == "oneOf" and error.context:
        deepest = best_match(error.context)
        return friendly(deepest)
    if error.validator == "pattern":
        hint = {
            "^[A-Za-z_][A-Za-z0-9_]*$": "use letters, digits and _ (not starting with a digit)",
            "^[0-9*#]{1,8}$": "menu keys are 1-8 of the keys 0-9 * #",
        }.get(str(error.validator_value), f"it must match {error.validator_value}")
        return f"{error.instance!r} is not allowed: {hint}"
    if error.validator == "enum" and isinstance(error.validator_value, list):
        return f"{error.instance!r} is not one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "type":
        got = type(error.instance).__name__
        return f"expected {error.validator_value}, got {got} {error.instance!r}"
    return str(error.message)
