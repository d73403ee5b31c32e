"""The JSON Schema (what editors and the loader's first pass check) and the model (what the
loader builds, with the only field defaults) describe the same language.

- the same node kinds, in the same order;
- every key a node of a kind may have is a field of its model class (or one of the few keys
  listed here that the loader turns into another field);
- every field default of the model is a value the schema accepts for that key, so leaving a
  key out means the same as writing its default.
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_args

import jsonschema
import pytest

from ivr.flow import model as m
from ivr.flow.model_values import (
    CallbackOffer,
    NumberRules,
    OutboundSurvey,
    RecordingConsent,
    SurveyQuestion,
    SurveySpec,
)
from ivr.flow.queue_node import QueueNode
from ivr.flow.schema import flow_schema
from ivr.flow.split import SplitBranch

DEFS: dict[str, Any] = flow_schema()["$defs"]

# Where each model class's fields are written in YAML: the schema object holding them, as a
# path of property names from a $defs entry (or from the top of the schema when the def is "").
NODE_OBJECTS: dict[type[Any], list[tuple[str, tuple[str, ...]]]] = {
    cls: [(f"{cls.yaml_keys[0]}_node", ()), (f"{cls.yaml_keys[0]}_node", (cls.yaml_keys[0],))]
    for cls in get_args(m.FlowNode)
}
NODE_OBJECTS[m.BranchNode] = [("branch_node", ())]  # its cases are BranchCase objects
NODE_OBJECTS[m.SplitNode] = [("split_node", ())]  # its branches are SplitBranch objects
OTHER_OBJECTS: dict[type[Any], list[tuple[str, tuple[str, ...]]]] = {
    m.BranchCase: [("branch_node", ("branch",))],
    SplitBranch: [("split_node", ("split",))],
    m.Retry: [("", ("defaults", "no_input"))],
    CallbackOffer: [("queue_node", ("queue", "callback"))],
    RecordingConsent: [("queue_node", ("queue", "record"))],
    SurveySpec: [("survey", ())],
    SurveyQuestion: [("survey", ("questions",))],
    OutboundSurvey: [("survey", ("outbound",))],
    NumberRules: [("", ("number_policy",))],
}
# (class, field) -> the YAML key path when it is not the field's name
RENAMED: dict[tuple[type[Any], str], tuple[str, ...]] = {
    (m.MenuNode, "inputs"): ("input",),
    (m.MenuNode, "confirm_mode"): ("confirm",),
    (m.CollectNode, "min_digits"): ("digits", "min"),
    (m.CollectNode, "max_digits"): ("digits", "max"),
    (m.CollectNode, "terminator"): ("digits", "end"),
    (QueueNode, "queue"): ("name",),
    (SurveySpec, "inputs"): ("input",),
}
# YAML keys the loader turns into a field of another name or shape: (class, key) -> field
FOLDED: dict[tuple[type[Any], str], str] = {
    (m.HoursNode, "open"): "hours",
    (m.HoursNode, "holidays"): "hours",
    (m.HoursNode, "timezone"): "hours",
    (m.HoursNode, "calendar"): "hours",
    (m.HoursNode, "workdays"): "hours",
    (m.MenuNode, "confirm_prompt"): "options",  # one question per spoken option
    (m.HttpNode, "get"): "path",
    (m.HttpNode, "post"): "path",
    (m.BranchNode, "else"): "otherwise",
    (m.BranchNode, "branch"): "cases",
    (m.BranchCase, "if"): "condition",
    (m.BranchCase, "goto"): "target",
    (m.SplitNode, "split"): "branches",
    (SplitBranch, "goto"): "target",
    (m.SetNode, "set"): "assign",
    (m.GotoNode, "goto"): "target",
    (m.CallNode, "call"): "flow",
    (m.PlayNode, "play"): "prompt",
    (m.PlayNode, "say"): "prompt",
    (m.SurveyNode, "survey"): "survey",
    (QueueNode, "survey"): "survey",
    (m.HangupNode, "outcome"): "outcome",
    (m.HangupNode, "hangup"): "outcome",
}
NOT_FIELDS = {"description"}  # for people only


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DEFS[schema["$ref"].rsplit("/", 1)[1]]
    if "allOf" in schema:  # http: the object and a oneOf of required keys
        return _resolve(schema["allOf"][0])
    if "oneOf" in schema:  # hangup: null, true or an object
        objects = [s for s in schema["oneOf"] if s.get("type") == "object"]
        return objects[0] if objects else schema
    if schema.get("type") == "array":
        return _resolve(schema["items"])
    return schema


def _object(def_name: str, path: tuple[str, ...]) -> dict[str, Any] | None:
    schema = DEFS[def_name] if def_name else flow_schema()
    for key in path:
        schema = _resolve(schema.get("properties", {}).get(key, {}))
    return schema if "properties" in schema else None


def _objects(cls: type[Any]) -> list[dict[str, Any]]:
    places = NODE_OBJECTS.get(cls) or OTHER_OBJECTS[cls]
    return [o for d, p in places if (o := _object(d, p)) is not None]


def _property(cls: type[Any], name: str) -> dict[str, Any] | None:
    path = RENAMED.get((cls, name), (name,))
    for obj in _objects(cls):
        schema: dict[str, Any] | None = obj
        for key in path:
            props = _resolve(schema or {}).get("properties", {})
            schema = props.get(key)
        if schema is not None:
            return schema
    return None


def test_the_schema_has_the_model_node_kinds_in_order() -> None:
    branches = DEFS["node"]["allOf"]
    refs = [b["then"]["$ref"].rsplit("/", 1)[1] for b in branches]
    assert refs == [f"{k}_node" for k in m.KINDS] + ["node_kind"]  # then: no kind key
    assert [b["if"]["required"] for b in branches[:-1]] == [[k] for k in m.KINDS]
    for cls in get_args(m.FlowNode):
        for key in cls.yaml_keys:
            assert key in DEFS[f"{key}_node"]["required"]


CLASSES = [*get_args(m.FlowNode), *OTHER_OBJECTS]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_model_default_is_a_value_the_schema_accepts(cls: type[Any]) -> None:
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING or f.default is None or f.name in ("id", "line"):
            continue
        if dataclasses.is_dataclass(f.default):  # Retry(): checked as its own class
            continue
        prop = _property(cls, f.name)
        assert prop is not None, f"{cls.__name__}.{f.name} has a default but no YAML key"
        value = list(f.default) if isinstance(f.default, tuple) else f.default
        validator = jsonschema.Draft202012Validator({**prop, "$defs": DEFS})
        errors = [e.message for e in validator.iter_errors(value)]
        assert not errors, f"{cls.__name__}.{f.name} = {f.default!r}: {errors}"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_yaml_key_is_a_model_field(cls: type[Any]) -> None:
    fields = {f.name for f in dataclasses.fields(cls)}
    renamed = {path[0]: name for (c, name), path in RENAMED.items() if c is cls}
    for obj in _objects(cls):
        for key in obj["properties"]:
            container = key in getattr(cls, "yaml_keys", ()) and (cls, key) not in FOLDED
            if key in NOT_FIELDS or container:  # `menu:` holds the fields, is none
                continue
            field = FOLDED.get((cls, key)) or renamed.get(key, key)
            assert field in fields, f"YAML key {key!r} of {cls.__name__} is no model field"


def test_a_yaml_key_left_out_means_the_model_default() -> None:
    """The loader passes only what the YAML gives: a minimal node is all model defaults."""
    from ivr.flow.loader import parse_flow

    flow = parse_flow(
        "start: m\nnodes:\n"
        "  m: {menu: {prompt: Hi, options: {'1': q}, otherwise: hangup}}\n"
        "  q: {queue: {name: sales, when_unavailable: hangup, when_timeout: hangup}}\n",
        file="x.yaml",
        name="x",
    )
    menu, queue = flow.nodes["m"], flow.nodes["q"]
    assert isinstance(menu, m.MenuNode) and isinstance(queue, QueueNode)
    for node in (menu, queue):
        for f in dataclasses.fields(node):
            if f.default is not dataclasses.MISSING:
                assert getattr(node, f.name) == f.default, f.name


def test_every_node_kind_has_a_loader_entry() -> None:
    from ivr.flow.node_builders import NodeBuilder

    missing = [k for k in m.KINDS if not callable(getattr(NodeBuilder, f"_{k}", None))]
    assert not missing, f"add NodeBuilder._KIND to ivr/flow/node_builders.py for: {missing}"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_schema_shows_the_model_default_of_every_key(cls: type[Any]) -> None:
    """Defaults are written once, in the model: scripts/gen_schema.py reads them from there
    into each key's ``default`` and description, for editors."""
    for f in dataclasses.fields(cls):
        value = f.default
        if value is dataclasses.MISSING or value is None or f.name in ("id", "line"):
            continue
        if dataclasses.is_dataclass(value) or value in ((), frozenset()):
            continue  # Retry(): its own keys show theirs; an empty list says nothing
        prop = _property(cls, f.name)
        shown = list(value) if isinstance(value, tuple) else value
        assert prop is not None and prop.get("default") == shown, f"{cls.__name__}.{f.name}"
        assert "Default: " in prop["description"], f"{cls.__name__}.{f.name}"
