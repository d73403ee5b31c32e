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
from ivr.flow.suggest import did_you_mean, suggest


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
    errors = _tied(list(_top_validator().iter_errors(data)))
    out: list[tuple[Path, str]] = []
    for e in errors:
        slipped = _slipped_key(e)
        out.append(((*_path(e), "<key>"), slipped) if slipped else (_path(e), friendly(e)))
    return out


@cache
def _node_keys() -> frozenset[str]:
    """Every key some node kind has."""
    defs = flow_schema().get("$defs", {})
    return frozenset(
        key
        for name, spec in defs.items()
        if name.endswith("_node") and isinstance(spec, dict)
        for key in spec.get("properties", {})
    )


def _slipped_key(error: ValidationError) -> str | None:
    """``next: hangup`` indented like a node id: a node key slipped out of its node."""
    path = tuple(error.absolute_path)
    if error.validator != "type" or len(path) != 2 or path[0] != "nodes":
        return None
    if str(path[1]) not in _node_keys() or isinstance(error.instance, dict):
        return None
    return (
        f"'{path[1]}' is indented like a node id, so it reads as a node of its own; if it "
        "belongs to the node above, indent it like that node's other keys"
    )


def node_errors(kind: str, node: Any) -> list[tuple[Path, str]]:
    """Schema errors of one node of a known kind, paths relative to the node."""
    errors = sorted(_node_validator(kind).iter_errors(node), key=lambda e: e.path)
    return [(_path(e), friendly(e)) for e in _tied(errors)]


def _tied(errors: list[ValidationError]) -> list[ValidationError]:
    """Without the "missing required key" errors a misspelt key explains: ``nxt: a`` is one
    mistake ("did you mean 'next'?"), not also a missing ``next``; and without the schema's
    list of allowed keys (``propertyNames``, for editors), which the "unknown key" message
    already gives."""
    errors = [e for e in errors if list(e.schema_path)[-2:] != ["propertyNames", "enum"]]
    meant = {
        (tuple(e.absolute_path), hint)
        for e in errors
        if e.validator == "additionalProperties" and isinstance(e.instance, dict)
        for unknown in _unknown(e)
        for hint in suggest(unknown, _properties(e), 1)
    }
    return [
        e
        for e in errors
        if not (e.validator == "required" and (tuple(e.absolute_path), _missing(e)) in meant)
    ]


def _unknown(error: ValidationError) -> list[str]:
    allowed = _properties(error)
    instance: dict[str, Any] = error.instance if isinstance(error.instance, dict) else {}
    return sorted(str(k) for k in instance if k not in allowed)


def _missing(error: ValidationError) -> str:
    """The key a ``required`` error names."""
    return str(error.message).split("'")[1] if "'" in error.message else str(error.message)


def _path(error: ValidationError) -> Path:
    """Where to point: an unknown key itself rather than the mapping holding it."""
    path: Path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        unknown = _unknown(error)
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
        unknown = _unknown(error)
        meant = {u: h for u in unknown for h in suggest(u, allowed, 1)}
        keys = ", ".join(repr(u) for u in unknown)
        if unknown == ["served"]:  # it once was a key of every node: say where it went
            return (
                "unknown key 'served': only play and say nodes take it (the caller was served "
                "once they heard the answer); put 'served: true' on the play or say node that "
                "gives the answer"
            )
        if len(unknown) == 1 and meant:
            hint = did_you_mean(list(meant.values()))
        elif meant:
            hint = "did you mean " + ", ".join(f"{h!r} for {u!r}" for u, h in meant.items()) + "?"
        else:
            return f"unknown key {keys}; allowed here: {', '.join(allowed)}"
        return f"unknown key {keys}; {hint} Allowed here: {', '.join(allowed)}"
    if error.validator == "required":
        return f"missing required key '{_missing(error)}'"
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
