"""The flow schema as editors use it (yaml-language-server, e.g. VS Code): the whole schema,
not the loader's node-by-node pass. A node's kind key picks its one branch, so a mistake is
reported at that node kind's keys and names the key, with the keys allowed there; every key
says its default and shows an example; the copy next to the sample flows is the shipped one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ivr.cli import main
from ivr.flow.model import KINDS
from ivr.flow.schema import flow_schema
from ivr.flow.schema_file import SCHEMA_FILE, schema_text

REPO = Path(__file__).resolve().parents[2]
BROKEN = REPO / "tests/support/fixtures/broken_flows"
SCHEMA = flow_schema()
DEFS: dict[str, Any] = SCHEMA["$defs"]
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
NO_BRANCH = "is not valid under any of the given schemas"


def errors(data: Any) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(data)]


def flow(**nodes: Any) -> dict[str, Any]:
    return {"start": next(iter(nodes)), "nodes": nodes}


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", sorted((REPO / "flows").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_flow_is_valid_and_points_at_the_copy_beside_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == f"# yaml-language-server: $schema=./{SCHEMA_FILE}"
    assert errors(yaml.safe_load(text)) == []


def test_the_copy_beside_the_sample_flows_is_the_shipped_schema() -> None:
    copy = (REPO / "flows" / SCHEMA_FILE).read_text(encoding="utf-8")
    assert copy == schema_text(), "run python scripts/gen_schema.py (it writes both)"
    assert copy == (REPO / "ivr/flow/schema.json").read_text(encoding="utf-8")


def test_a_misspelt_key_is_named_with_the_keys_allowed_there() -> None:
    data = yaml.safe_load((BROKEN / "unknown_key.yaml").read_text(encoding="utf-8"))
    found = errors(data)
    assert "'nxt' is not one of ['barge_in', 'description', 'next', 'play', 'served']" in found
    assert not [m for m in found if NO_BRANCH in m]


def test_an_unknown_node_kind_is_named_with_the_kind_keys() -> None:
    data = yaml.safe_load((BROKEN / "unknown_kind.yaml").read_text(encoding="utf-8"))
    (message,) = errors(data)
    assert message.startswith("'paly' is not one of ['play', 'say', 'menu', ")
    assert all(repr(k) in message for k in KINDS)


def test_no_broken_flow_gets_the_any_of_the_given_schemas_answer() -> None:
    for path in sorted(BROKEN.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue  # a syntax error: the editor's YAML parser reports it, not the schema
        assert not [m for m in errors(data) if NO_BRANCH in m], path.name


def test_a_misspelt_key_inside_a_kind_lists_that_kind_s_keys() -> None:
    menu = {"prompt": "Hi", "options": {"1": "a"}, "otherwise": "a", "timeot_s": 3}
    unexpected, message = errors(flow(m={"menu": menu}, a={"hangup": True}))
    assert unexpected == "Additional properties are not allowed ('timeot_s' was unexpected)"
    assert message.startswith("'timeot_s' is not one of [")
    assert "'timeout_s'" in message and "'no_input'" in message


def test_a_node_with_no_kind_key_is_told_the_kind_keys() -> None:
    (message,) = errors(flow(a={"next": "hangup"}))
    assert message.startswith("'next' is not one of ['play', 'say', ")
    assert [m for m in errors(flow(a={}))] == ["{} should be non-empty"]
    assert errors(flow(a="hangup")) == ["'hangup' is not of type 'object'"]


def test_a_queue_node_s_survey_key_does_not_make_it_a_survey_node() -> None:
    queue = {"name": "sales", "when_unavailable": "hangup", "when_timeout": "hangup"}
    assert errors(flow(q={"queue": queue, "survey": "after", "next": "hangup"})) == []
    assert errors(flow(s={"survey": "after", "next": "hangup"})) == []


def test_unanswered_is_a_survey_node_s_exit_not_a_queue_node_s() -> None:
    survey = {"survey": "after", "unanswered": "bye", "next": "hangup"}
    assert errors(flow(s=survey, bye={"hangup": True})) == []
    assert errors(flow(s={**survey, "unanswered": "not a node id"})) != []
    queue = {"name": "sales", "when_unavailable": "hangup", "when_timeout": "hangup"}
    (unexpected, listed) = errors(flow(q={"queue": queue, "survey": "after", "unanswered": "q"}))
    assert "'unanswered' was unexpected" in unexpected and "'unanswered' is not one of" in listed


def test_two_kind_keys_are_both_named() -> None:
    found = errors(flow(a={"play": "Hi", "goto": "b", "next": "b"}, b={"hangup": True}))
    assert any(m.startswith("'goto' is not one of") for m in found)
    assert any(m.startswith("'play' is not one of") for m in found)


def _with_examples(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        return [s for item in schema for s in _with_examples(item)]
    if not isinstance(schema, dict):
        return []
    own = [schema] if "examples" in schema else []
    nested = [v for k, v in schema.items() if k not in ("examples", "default", "enum")]
    return own + [s for v in nested for s in _with_examples(v)]


def test_every_example_is_valid_where_it_is_shown() -> None:
    shown = _with_examples(SCHEMA)
    assert len(shown) > 150
    for schema in shown:
        validator = jsonschema.Draft202012Validator({**schema, "$defs": DEFS})
        for example in schema["examples"]:
            assert not list(validator.iter_errors(example)), (schema.get("description"), example)


@pytest.mark.parametrize("kind", KINDS)
def test_each_node_kind_shows_a_yaml_example_of_itself(kind: str) -> None:
    spec = DEFS[f"{kind}_node"]
    assert "```yaml\n" in spec["markdownDescription"]
    (example,) = spec["examples"]
    assert kind in example
    node = jsonschema.Draft202012Validator({"$ref": "#/$defs/node", "$defs": DEFS})
    assert not list(node.iter_errors(example))


def _documented(obj: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for key, prop in obj.get("properties", {}).items():
        out.append((f"{path}.{key}", prop))
        for inner in (prop, prop.get("items"), *(prop.get("allOf") or [])[:1]):
            if isinstance(inner, dict) and "properties" in inner:
                out += _documented(inner, f"{path}.{key}")
    return out


def test_every_key_of_a_node_says_its_default_and_shows_an_example() -> None:
    keys = [kp for kind in KINDS for kp in _documented(DEFS[f"{kind}_node"], kind)]
    assert len(keys) > 100
    for where, prop in keys:
        assert prop.get("examples"), where
        text = prop.get("description", "")
        assert any(w in text for w in ("Default:", "Required.", "Optional.")), where
        assert "Example: " in text, where
        if "default" in prop:
            assert "Default: " in text, where


def test_ivr_schema_writes_the_copy_and_tells_the_modeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "--write", str(tmp_path)]) == 0
    written = tmp_path / SCHEMA_FILE
    assert written.read_text(encoding="utf-8") == schema_text()
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"wrote {written}; put this line at the top of each flow next to it:",
        "# yaml-language-server: $schema=./flow.schema.json",
    ]
    # what an editor does with the modeline: the flow checked against the file beside it
    schema = json.loads(written.read_text(encoding="utf-8"))
    wrong = {"start": "a", "nodes": {"a": {"play": "Hi", "nxt": "hangup"}}}
    messages = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(wrong)]
    assert "'nxt' is not one of ['barge_in', 'description', 'next', 'play', 'served']" in messages


def test_ivr_schema_writes_to_a_named_file_and_refuses_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "--write", str(tmp_path / "my.schema.json")]) == 0
    assert (tmp_path / "my.schema.json").read_text(encoding="utf-8") == schema_text()
    assert capsys.readouterr().out.endswith("$schema=./my.schema.json\n")
    assert main(["schema", "--write", str(tmp_path / "nope" / "")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == SCHEMA
