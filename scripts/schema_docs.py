"""What the flow schema tells an editor besides the shapes (used by gen_schema.py).

- ``node_defs``: a node's kind key picks its one branch (``if``/``then``), so an editor
  checks the node against that kind only and points at the exact key that is wrong; a node
  with no kind key gets its own branch that names the stray key and lists the kind keys.
- ``list_allowed_keys``: each closed object also lists its keys (``propertyNames``), so the
  error for a misspelt key names the allowed ones (``ivr.flow.schema`` drops these duplicates
  of its own "unknown key" message).
- ``document``: each key's default, read from the model class that owns it (the model is
  where defaults are written: ``ivr.flow.value_reader.field_default``), and an example; each
  node kind's description with a short YAML example.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, get_args

import yaml
from schema_examples import COMMON_EXAMPLES, EXAMPLES, KIND_EXAMPLES, FlowDefaults

from ivr.flow import model as m
from ivr.flow.queue_node import QueueNode
from ivr.flow.model_values import (
    CallbackOffer,
    NumberRules,
    OutboundSurvey,
    RecordingConsent,
    SurveyQuestion,
    SurveySpec,
)
from ivr.flow.split import SplitBranch
from ivr.flow.value_reader import field_default

Schema = dict[str, Any]


def node_defs(defs: Schema, kinds: tuple[str, ...], common: list[str]) -> Schema:
    """``node``: one ``if``/``then`` branch per kind key, then the branch of a node with none
    (``node_kind``: a misspelt kind is named with the keys a node may have; a node of only
    common keys such as ``next:`` is told the kind keys)."""
    branches = []
    for kind in kinds:
        cond: Schema = {"type": "object", "required": [kind]}
        # `survey: NAME` is also a key of queue nodes: a queue node is not a survey node
        hosts = [k for k in kinds if k != kind and kind in defs[f"{k}_node"]["properties"]]
        if hosts:
            cond["not"] = {"anyOf": [{"required": [k]} for k in hosts]}
        branches.append({"if": cond, "then": {"$ref": f"#/$defs/{kind}_node"}})
    no_kind = {"type": "object", "not": {"anyOf": [{"required": [k]} for k in kinds]}}
    branches.append({"if": no_kind, "then": {"$ref": "#/$defs/node_kind"}})
    listed = ", ".join(kinds)
    known = {"enum": [*kinds, *common]}
    return {
        "node": {
            "type": "object",
            "description": f"A node: exactly one kind key ({listed}) and that kind's keys.",
            "allOf": branches,
        },
        "node_kind": {
            "description": f"A node needs one kind key: {listed}.",
            "propertyNames": known,
            "if": {"propertyNames": known},
            "then": {"propertyNames": {"enum": list(kinds)}, "minProperties": 1},
        },
    }


def list_allowed_keys(schema: Any) -> None:
    """Add ``propertyNames: {enum: keys}`` to every closed object, except alternatives of a
    ``oneOf``/``anyOf`` (one wrong alternative's key is not the instance's mistake)."""
    if isinstance(schema, list):
        for s in schema:
            list_allowed_keys(s)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("additionalProperties") is False and "properties" in schema:
        schema.setdefault("propertyNames", {"enum": sorted(schema["properties"])})
    for key, value in schema.items():
        if key in ("oneOf", "anyOf", "enum", "examples", "default", "required"):
            continue
        if key in ("properties", "$defs"):
            for sub in value.values():
                list_allowed_keys(sub)
        else:
            list_allowed_keys(value)


# --- defaults and examples -------------------------------------------------------------------


# YAML key -> model field, where they differ: (class, key) -> field
FIELD_OF: dict[tuple[type[Any], str], str] = {
    (m.MenuNode, "input"): "inputs",
    (m.MenuNode, "confirm"): "confirm_mode",
    (QueueNode, "name"): "queue",
    (SurveySpec, "input"): "inputs",
    (SplitBranch, "goto"): "target",
}
# an object inside a class's YAML: (class, key) -> the class its keys belong to
NESTED: dict[tuple[type[Any], str], type[Any]] = {
    (m.MenuNode, "no_input"): m.Retry,
    (m.MenuNode, "no_match"): m.Retry,
    (m.CollectNode, "no_input"): m.Retry,
    (m.CollectNode, "no_match"): m.Retry,
    (m.CollectNode, "digits"): m.CollectNode,
    (m.BranchNode, "branch"): m.BranchCase,
    (m.SplitNode, "split"): SplitBranch,
    (QueueNode, "callback"): CallbackOffer,
    (QueueNode, "record"): RecordingConsent,
    (SurveySpec, "questions"): SurveyQuestion,
    (SurveySpec, "outbound"): OutboundSurvey,
    (m.Flow, "defaults"): FlowDefaults,
    (FlowDefaults, "no_input"): m.Retry,
    (FlowDefaults, "no_match"): m.Retry,
    (m.Flow, "number_policy"): NumberRules,
}
DIGITS_FIELDS = {"min": "min_digits", "max": "max_digits", "end": "terminator"}
FLOW_DEFAULTS = ("timeout_s", "inter_digit_timeout_s", "no_input", "no_match")


def kind_class(kind: str) -> type[Any]:
    """The model class of a node kind."""
    return next(c for c in get_args(m.FlowNode) if kind in c.yaml_keys)


def document(schema: Schema, kinds: tuple[str, ...]) -> Schema:
    """``schema`` with defaults, examples and the node kinds' YAML examples (a copy: the
    generator shares small shapes between places, which must not share their notes)."""
    out: Schema = json.loads(json.dumps(schema))
    _document_object(out, m.Flow)
    _document_object(out["$defs"]["survey"], SurveySpec)
    for kind in kinds:
        cls, spec = kind_class(kind), out["$defs"][f"{kind}_node"]
        _document_object(spec, cls)
        example = KIND_EXAMPLES.get(kind)
        if example is None:
            raise KeyError(f"write a YAML example of a {kind} node in KIND_EXAMPLES")
        spec["examples"] = list(yaml.safe_load(example).values())
        spec["markdownDescription"] = f"{spec['description']}\n\n```yaml\n{example}```"
    # what an editor offers while a new node has no kind key yet: the kinds, each explained
    out["$defs"]["node_kind"]["properties"] = {
        kind: {
            "description": out["$defs"][f"{kind}_node"]["description"],
            "markdownDescription": out["$defs"][f"{kind}_node"]["markdownDescription"],
        }
        for kind in kinds
    }
    return out


def _document_object(obj: Schema, cls: type[Any]) -> None:
    required = set(obj.get("required", ()))
    for key, prop in obj.get("properties", {}).items():
        inner = _object_of(prop)
        if inner is not None and (cls, key) in NESTED:
            _document_object(inner, NESTED[cls, key])
        elif inner is not None and key in getattr(cls, "yaml_keys", ()):
            _document_object(inner, cls)  # `menu: {...}`: the kind's own keys
        _describe(prop, cls, key, key in required)


def _object_of(prop: Schema) -> Schema | None:
    """The object schema a property holds: itself, its array items, its allOf's first part
    or the object alternative of its oneOf."""
    for candidate in (prop, prop.get("items"), *(prop.get("allOf") or [])[:1]):
        if isinstance(candidate, dict) and "properties" in candidate:
            return candidate
    objects = [s for s in prop.get("oneOf", ()) if "properties" in s]
    return objects[0] if objects else None


def _describe(prop: Schema, cls: type[Any], key: str, required: bool) -> None:
    example = EXAMPLES.get(cls, {}).get(key, COMMON_EXAMPLES.get(key))
    if example is None and key in KIND_EXAMPLES:  # `menu:` holds the node's example
        example = next(iter(yaml.safe_load(KIND_EXAMPLES[key]).values()))[key]
    if example is None:
        raise KeyError(f"write an example for {cls.__name__}'s key {key!r} in EXAMPLES")
    text = prop.get("description", "").rstrip()
    default = model_default(cls, key)
    if required:
        note = "Required."
    elif default is not None:
        prop["default"] = default
        note = f"Default: {_yaml(default)}."
        if cls in (m.MenuNode, m.CollectNode) and key in FLOW_DEFAULTS:
            note = f"Default: the flow's defaults: {key}, else {_yaml(default)}."
    else:
        note = "Optional."
    prop["examples"] = [example]
    prop["description"] = f"{text} {note} Example: {key}: {_yaml(example)}".strip()


def model_default(cls: type[Any], key: str) -> Any:
    """The default the model gives a YAML key, as JSON (``None``: none, or none worth
    showing: an empty collection, a nested object's defaults, a computed value)."""
    name = FIELD_OF.get((cls, key), key)
    if cls is m.CollectNode:  # digits: {min, max, end}
        name = DIGITS_FIELDS.get(key, name)
    if cls is m.Flow and key not in ("language", "timezone"):
        return None  # the rest are computed from the file (languages: from language)
    fields = {f.name for f in dataclasses.fields(cls)}
    if name not in fields:
        return None
    value = field_default(cls, name)
    if value is dataclasses.MISSING or value is None or dataclasses.is_dataclass(value):
        return None
    if isinstance(value, (tuple, frozenset, dict)):
        return list(value) if value and isinstance(value, tuple) else None
    return value


class _Dumper(yaml.SafeDumper):
    """Quotes strings of digits: a YAML 1.2 editor reads 0900 as the number 900."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "'" if data.lstrip("+").isdigit() else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def _yaml(value: Any) -> str:
    """``value`` as YAML on one line (flow style), keys in the order written."""
    text = yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=True,
        sort_keys=False,
        allow_unicode=True,
        width=1000,
    )
    return text.removesuffix("\n...\n").rstrip("\n")
