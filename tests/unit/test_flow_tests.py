"""Flow tests (``ivr test``): the file format, a case run on the simulator and checked, the
sample flows' own tests, and a reload that refuses a flow whose tests fail."""

from __future__ import annotations

import json
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml
from support.flowkit import flow

from ivr.cli import main
from ivr.engines.http import extract
from ivr.errors import FlowErrors
from ivr.flow.library import load_library
from ivr.flow.registry import FlowRegistry
from ivr.flow.testcases import CASE_KEYS, EXPECT_KEYS, FlowCase, load_cases
from ivr.flow.testcases_schema import cases_schema
from ivr.flowtests.gate import refuse_failing
from ivr.runtime.flow_tests import run_cases

REPO = Path(__file__).resolve().parents[2]

MENU = """
flow: shop
start: menu
nodes:
  menu:
    menu:
      prompt: "Press 1 for A, 2 for B."
      options: {"1": a, "2": b}
      no_input: {prompt: "I heard nothing.", max: 1}
      otherwise: bye
  a: {play: "A.", next: bye, served: true}
  b:
    http: {get: "/b/{caller_id}", save: {size: size}, on_error: bye}
    next: bye
  bye: {play: "Bye.", next: hangup}
"""


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def cases(tmp: Path, text: str) -> list[FlowCase]:
    return list(load_cases(write(tmp, "tests/shop.yaml", text)).cases)


# --- the file format ---------------------------------------------------------------------------


def test_a_test_file_reads_into_cases_with_their_lines_and_defaults(tmp_path: Path) -> None:
    file = load_cases(
        write(
            tmp_path,
            "tests/shop.yaml",
            """
            defaults: {caller: "0123", at: next monday 10:00}
            cases:
              - name: a
                input: "1, wait"
                expect: {path: [menu, a, bye], outcome: self_service}
              - name: b
                caller: "0999"
                input: [2, hangup]
                http: {GET /b/0999: {size: 3}}
                expect: {variables: {size: "3"}, heard: [Bye.]}
            """,
        )
    )
    assert file.flow == "shop"  # the file's name
    a, b = file.cases
    assert (a.line, a.input, a.caller, a.at) == (4, ("1", "wait"), "0123", "next monday 10:00")
    assert a.expect.path == ("menu", "a", "bye")
    assert (b.caller, b.input, b.http) == ("0999", ("2", "hangup"), {"GET /b/0999": {"size": 3}})
    assert b.expect.variables == {"size": "3"}


def test_mistakes_in_a_test_file_name_the_line_and_the_key(tmp_path: Path) -> None:
    with pytest.raises(FlowErrors) as caught:
        cases(
            tmp_path,
            """
            cases:
              - name: a
                inptu: "1"
                expect: {paht: [menu]}
              - name: a
            """,
        )
    messages = [f"{e.line}: {e.message}" for e in caught.value.errors]
    assert "4: unknown key 'inptu'; did you mean 'input'?" in messages
    assert "5: unknown key 'paht'; did you mean 'path'?" in messages
    assert any(m.startswith("6: a case needs 'expect:'") for m in messages)
    assert "6: a case named 'a' is already on line 3" in messages


# --- a case run and checked --------------------------------------------------------------------


async def run_shop(tmp: Path, text: str) -> list[str]:
    shop = flow(MENU, "shop")
    results = await run_cases(shop, cases(tmp, text), {"shop": shop}, extract=extract)
    return [r.error or "\n".join(r.failures) for r in results]


async def test_a_case_that_holds_passes_and_one_that_does_not_says_why(tmp_path: Path) -> None:
    problems = await run_shop(
        tmp_path,
        """
        cases:
          - name: holds
            input: "wait, 1"
            expect:
              path: [menu, a, bye]
              outcome: self_service
              heard: [I heard nothing., A., Bye.]
              inputs: [{node: menu, kind: no_input}, {kind: dtmf, value: "1"}]
          - name: wrong
            input: "2"
            expect:
              path: [menu, a, bye]
              outcome: self_service
              heard: [Bye., A.]
              not_heard: [Bye.]
              variables: {size: "3"}
        """,
    )
    assert problems[0] == ""
    wrong = problems[1].splitlines()
    assert wrong[:5] == [
        "path differs (- expected, + actual):",
        "      menu",
        "    - a",
        "    + b",
        "      bye",
    ]
    assert "outcome: expected self_service, got failed_in_ivr" in wrong
    assert "heard: 'A.' not heard (in this order)" in wrong
    assert "not_heard: 'Bye.' was heard: play: Bye." in wrong
    assert "variable size: expected '3', got not set" in wrong


async def test_http_stubs_answer_lookups_and_a_missing_one_fails_it(tmp_path: Path) -> None:
    problems = await run_shop(
        tmp_path,
        """
        defaults: {caller: "42"}
        cases:
          - name: answered
            input: "2"
            http: {GET /b/42: {size: 3}}
            expect: {path: [menu, b, bye], variables: {size: "3"}}
          - name: no stub
            input: "2"
            expect: {path: [menu, b, bye], variables: {size: "3"}}
        """,
    )
    assert problems == ["", "variable size: expected '3', got not set"]


async def test_input_that_does_not_fit_the_flow_is_an_error_not_a_failure(
    tmp_path: Path,
) -> None:
    problems = await run_shop(
        tmp_path,
        """
        cases:
          - {name: not a token, input: "1, jump", expect: {outcome: self_service}}
          - {name: speech to a keys menu, input: "say:a", expect: {outcome: self_service}}
          - {name: bad time, at: next funday 10:00, expect: {outcome: self_service}}
        """,
    )
    assert problems[0].startswith("'jump' is not a caller action")
    assert problems[1].startswith("the caller's input does not fit the flow: 'say:a'")
    assert problems[2].startswith("'next funday 10:00': 'funday' is not a day")


# --- the sample flows, as CI runs them ----------------------------------------------------------


def test_the_sample_flows_pass_their_tests_with_every_item_covered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit, coverage = tmp_path / "junit.xml", tmp_path / "coverage.json"
    began = time.perf_counter()
    code = main(
        ["test", str(REPO / "flows"), "--junit", str(junit), "--coverage-json", str(coverage)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert time.perf_counter() - began < 10
    for name in ("bank", "main", "offer", "survey", "voice"):
        assert f"\n{name}: nodes " in out and "(100%)" in out.split(f"\n{name}: nodes ")[1][:60]
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert {s.get("name") for s in suites} == {"bank", "main", "offer", "survey", "voice"}
    assert sum(int(s.get("tests", 0)) for s in suites) >= 40
    assert all(s.get("failures") == "0" and s.get("errors") == "0" for s in suites)


def test_a_failing_test_exits_1_with_the_path_diff_and_junit_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "flows/shop.yaml", MENU)
    write(
        tmp_path,
        "flows/tests/shop.yaml",
        """
        cases:
          - {name: wrong, input: "2", expect: {path: [menu, a, bye]}}
        """,
    )
    junit = tmp_path / "junit.xml"
    assert main(["test", str(tmp_path / "flows"), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  " in out and "shop.yaml:3: shop: wrong" in out
    assert "    - a\n    + b\n" in out
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message") == "path differs (- expected, + actual):"


def test_the_tests_folder_is_never_loaded_as_flows(tmp_path: Path) -> None:
    write(tmp_path, "flows/shop.yaml", MENU)
    write(tmp_path, "flows/tests/shop.yaml", "cases: [{name: a, expect: {outcome: x}}]\n")
    library = load_library([tmp_path / "flows"])
    assert (sorted(library.flows), library.errors) == (["shop"], [])
    assert main(["validate", str(tmp_path / "flows")]) == 0


# --- a reload can refuse a flow whose tests fail ------------------------------------------------


async def test_a_reload_keeps_the_version_that_passes_its_tests(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    write(tmp_path, "flows/shop.yaml", MENU)
    write(
        tmp_path,
        "flows/tests/shop.yaml",
        """
        cases:
          - {name: one is A, input: "1", expect: {path: [menu, a, bye]}}
        """,
    )
    registry = FlowRegistry(flows, poll_s=0)
    registry.vet = lambda library: refuse_failing(library, flows)
    assert (await registry.reload("start")).result == "ok"
    first = registry.get("shop")
    assert first is not None

    write(tmp_path, "flows/shop.yaml", MENU.replace('"A.", next: bye', '"A.", next: hangup'))
    result = await registry.reload("edit")
    assert result.result == "partial"
    assert registry.get("shop") is first  # the tested version keeps serving
    assert (
        "flow 'shop' refused (flows_require_tests): 1 of 1 tests fail" in result.errors[0].message
    )
    assert "'one is A': path differs" in result.errors[0].message

    write(tmp_path, "flows/shop.yaml", MENU.replace("Bye.", "Goodbye."))
    assert (await registry.reload("fixed")).result == "ok"
    assert registry.get("shop") is not first


# --- the test files' JSON Schema ---------------------------------------------------------------


def test_the_schema_is_shipped_beside_the_tests_and_checks_them() -> None:
    schema = cases_schema()
    shipped = REPO / "flows/tests/schema.json"
    assert json.loads(shipped.read_text(encoding="utf-8")) == schema, "ivr test --schema > it"
    case = schema["properties"]["cases"]["items"]["properties"]
    assert tuple(case) == CASE_KEYS and tuple(case["expect"]["properties"]) == EXPECT_KEYS
    for file in sorted((REPO / "flows/tests").glob("*.yaml")):
        assert file.read_text(encoding="utf-8").startswith("# yaml-language-server: $schema=")
        jsonschema.validate(yaml.safe_load(file.read_text(encoding="utf-8")), schema)
    wrong = {"cases": [{"name": "a", "expect": {"paht": ["menu"]}}]}
    with pytest.raises(jsonschema.ValidationError, match="'paht' was unexpected"):
        jsonschema.validate(wrong, schema)
