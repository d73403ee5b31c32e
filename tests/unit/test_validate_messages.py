"""``ivr validate`` points at the cause: golden messages over a set of broken flows, and the
json and github formats.

Each ``tests/support/fixtures/broken_flows/NAME.yaml`` holds one mistake (its first comment
says which); ``NAME.txt`` next to it is exactly what ``ivr validate NAME.yaml`` prints (the
diagnostics, then the summary line), run from that directory. After a deliberate change to
the messages, rewrite the golden files and review the diff::

    IVR_UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/unit/test_validate_messages.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.errors import FlowErrors
from ivr.flow.diagnostics import Diagnostic, split_fix
from ivr.flow.loader import parse_flow
from ivr.flow.suggest import suggest

BROKEN = Path(__file__).resolve().parents[1] / "support/fixtures/broken_flows"
FLOWS = sorted(p.name for p in BROKEN.glob("*.yaml"))
UPDATE = os.environ.get("IVR_UPDATE_GOLDEN") == "1"
STALE_HOLIDAYS = """\
start: h
nodes:
  h:
    hours:
      open: {mon-fri: "09:00-18:00"}
      holidays: ["2001-01-01"]
      when_open: hangup
      when_closed: hangup
"""


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_broken_flow_has_its_golden_file() -> None:
    assert len(FLOWS) >= 15
    assert {p.stem for p in BROKEN.glob("*.txt")} == {Path(f).stem for f in FLOWS}


@pytest.mark.parametrize("name", FLOWS)
def test_golden_message(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(BROKEN)
    code, out, err = validate(capsys, name)
    golden = BROKEN / f"{Path(name).stem}.txt"
    if UPDATE:
        golden.write_text(err + out, encoding="utf-8")
    assert code == 1
    assert err + out == golden.read_text(encoding="utf-8")


def test_a_typo_in_a_menu_target_is_one_error_with_what_it_cut_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(BROKEN)
    _, _, err = validate(capsys, "menu_target_typo.yaml")
    typo, orphan = err.splitlines()
    assert typo.startswith("menu_target_typo.yaml:12:14: node 'menu': goes to 'slaes'")
    assert "(3 nodes are unreachable because of this: sales, sales_hours, sales_offer)" in typo
    assert typo.endswith("; did you mean 'sales'?")
    # nothing leads to old_promo, typo or not: it stays an error of its own
    assert orphan.startswith("menu_target_typo.yaml:30:3: node 'old_promo': never reached")


def test_json_is_one_document_of_diagnostics(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(BROKEN)
    code, out, err = validate(capsys, ".", "--format", "json")
    assert code == 1 and err == ""
    doc = json.loads(out)
    assert doc["ok"] is False and doc["flows_valid"] == 0
    assert doc["errors"] == len(doc["diagnostics"]) >= len(FLOWS)
    keys = {"file", "line", "column", "node", "severity", "message"}
    assert all(keys <= set(d) <= keys | {"fix"} for d in doc["diagnostics"])
    typo = next(d for d in doc["diagnostics"] if d["file"].endswith("menu_target_typo.yaml"))
    assert typo == {
        "file": str(Path("menu_target_typo.yaml")),
        "line": 12,
        "column": 14,
        "node": "menu",
        "severity": "error",
        "message": "goes to 'slaes', which is not a node of this flow "
        "(3 nodes are unreachable because of this: sales, sales_hours, sales_offer)",
        "fix": "did you mean 'sales'?",
    }
    (tab,) = [d for d in doc["diagnostics"] if d["file"].endswith("tab_indent.yaml")]
    assert (tab["line"], tab["column"], tab["node"]) == (5, 1, None)
    assert tab["message"] == "a tab in the indentation"


def test_github_annotates_each_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(BROKEN)
    code, out, err = validate(
        capsys, "unknown_key.yaml", "missing_colon.yaml", "--format", "github"
    )
    assert code == 1 and err == ""
    assert out.splitlines() == [  # in the order the files were given
        "::error file=unknown_key.yaml,line=6,col=5::node 'welcome': unknown key 'nxt'; did you "
        "mean 'next'? Allowed here: barge_in, description, next, play, served",
        "::error file=missing_colon.yaml,line=4,col=10::'welcome' has no ':' after it; "
        "write 'welcome:'",
        "0 flow(s) valid, 2 with errors",
    ]


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_warnings_stay_warnings_in_every_format(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "stale.yaml").write_text(STALE_HOLIDAYS, encoding="utf-8")
    code, out, err = validate(capsys, str(tmp_path), "--format", fmt)
    assert code == 0  # warnings alone never fail the run
    if fmt == "text":
        assert f"{tmp_path / 'stale.yaml'}:4:1: node 'h': warning: no holiday listed" in err
        assert out == "1 flow(s) valid, 1 warning(s)\n"
    elif fmt == "json":
        doc = json.loads(out)
        assert (doc["ok"], doc["errors"], doc["warnings"]) == (True, 0, 1)
        (warning,) = doc["diagnostics"]
        assert warning["severity"] == "warning"
        assert warning["message"].startswith("no holiday listed between")
        assert warning["fix"].startswith("add next year's dates to 'holidays'")
    else:
        first, summary = out.splitlines()
        assert first.startswith(f"::warning file={tmp_path / 'stale.yaml'},line=4,col=1::")
        assert summary == "1 flow(s) valid, 1 warning(s)"


def test_errors_and_warnings_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "stale.yaml").write_text(STALE_HOLIDAYS, encoding="utf-8")
    (tmp_path / "typo.yaml").write_text((BROKEN / "unknown_kind.yaml").read_text("utf-8"))
    code, out, _ = validate(capsys, str(tmp_path), "--format", "json")
    assert code == 1
    assert [d["severity"] for d in json.loads(out)["diagnostics"]] == ["error", "warning"]


def test_no_flow_files_is_an_error_in_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = validate(capsys, str(tmp_path), "--format", "json")
    assert code == 1
    (problem,) = json.loads(out)["diagnostics"]
    assert problem["message"] == f"no flow files found in {tmp_path}"
    code, out, _ = validate(capsys, str(tmp_path), "--format", "github")
    assert code == 1 and out.startswith("::error file=")


def test_github_escapes_what_would_end_the_command() -> None:
    d = Diagnostic("a,b:c.yaml", 1, 2, None, "error", "50% off\nnext line")
    assert d.github() == "::error file=a%2Cb%3Ac.yaml,line=1,col=2::50%25 off%0Anext line"


@pytest.mark.parametrize(
    ("message", "problem", "fix"),
    [
        ("unknown key 'a; b'; did you mean 'ab'?", "unknown key 'a; b'", "did you mean 'ab'?"),
        ("a speech menu needs words", "a speech menu needs words", None),
        ("x; y; z", "x", "y; z"),
    ],
)
def test_the_fix_is_after_the_first_semicolon_outside_quotes(
    message: str, problem: str, fix: str | None
) -> None:
    assert split_fix(message) == (problem, fix)


@pytest.mark.parametrize(
    ("word", "names", "expected"),
    [
        ("mian", ["menu", "main", "goodbye"], ["main"]),  # two letters swapped
        ("nxt", ["next", "play", "served"], ["next"]),  # one letter missing
        ("playy", ["play", "say", "menu"], ["play"]),  # one letter too many
        ("Welcom", ["welcome", "goodbye"], ["welcome"]),  # case aside
        ("fetch", ["fetch_balance", "tell"], ["fetch_balance"]),  # starts alike
        ("xyz", ["welcome", "goodbye"], []),
        ("main", ["main"], []),  # never the word itself
    ],
)
def test_did_you_mean(word: str, names: list[str], expected: list[str]) -> None:
    assert suggest(word, names) == expected


def test_several_misspelt_keys_get_a_suggestion_each() -> None:
    text = "start: a\nnodes:\n  a: {play: x, nxt: hangup, servd: true, zzz: 1}\n"
    with pytest.raises(FlowErrors) as info:
        parse_flow(text, file="f.yaml", name="f")
    # one error: the missing 'next' is explained by 'nxt'
    assert [str(e) for e in info.value.errors] == [
        "f.yaml:3:16: node 'a': unknown key 'nxt', 'servd', 'zzz'; did you mean 'next' for "
        "'nxt', 'served' for 'servd'? Allowed here: barge_in, description, next, play, served"
    ]
