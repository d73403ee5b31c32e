"""``ivr test`` as CI runs it (the installed command, in its own process), and the coverage
it writes drawn by ``ivr graph --coverage`` through Graphviz."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IVR = [sys.executable, "-m", "ivr"]


def ivr(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IVR, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_ivr_test_runs_the_sample_flows_tests_for_ci(tmp_path: Path) -> None:
    junit, coverage = tmp_path / "junit.xml", tmp_path / "coverage.json"
    done = ivr("test", "flows/", "--junit", str(junit), "--coverage-json", str(coverage))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # the test calls' log lines stay in their cases
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith(("4", "5", "6", "7", "8", "9")) and " 0 failed" in summary
    cases = ET.parse(junit).getroot().findall("testsuite/testcase")
    assert len(cases) >= 40 and all(len(c) == 0 for c in cases)  # no failure, no error
    flows = json.loads(coverage.read_text(encoding="utf-8"))["flows"]
    assert {name: data["percent"] for name, data in flows.items()} == {
        "bank": 100.0,
        "main": 100.0,
        "offer": 100.0,
        "survey": 100.0,
        "voice": 100.0,
    }


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_untested_parts_are_grey_in_the_svg(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    (flows / "tests").mkdir(parents=True)
    shutil.copy(REPO / "flows/main.yaml", flows / "main.yaml")
    (flows / "tests/main.yaml").write_text(
        "cases:\n  - {name: sales, input: '1', expect: {path: [welcome, menu, sales, goodbye]}}\n",
        encoding="utf-8",
    )
    coverage, svg = tmp_path / "coverage.json", tmp_path / "main.svg"
    done = ivr("test", str(flows), "--coverage-json", str(coverage))
    assert done.returncode == 0, done.stdout
    assert "main: nodes 4/6, exits 4/10, retries 0/2 (44%)" in done.stdout
    assert "main.yaml:34: node support (never reached, nor its 1 exits/retries)" in done.stdout
    done = ivr("graph", str(flows / "main.yaml"), "--coverage", str(coverage), "-o", str(svg))
    assert done.returncode == 0, done.stderr
    text = svg.read_text(encoding="utf-8")
    assert (
        text.count('class="node ivr&#45;node kind&#45;play untested"') == 2
    )  # support, read_number
    assert text.count('class="edge untested"') == 6  # 2, 3, *, otherwise and their next
    assert text.count("no test reaches it") == 2
    assert "flow tests walk 44%" in text
    missing = ivr("graph", str(flows / "main.yaml"), "--coverage", str(tmp_path / "none.json"))
    assert missing.returncode == 2 and "no such file" in missing.stderr  # checked before it runs
