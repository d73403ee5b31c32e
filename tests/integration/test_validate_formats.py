"""``ivr validate --format json|github`` as CI runs it: the console script in a subprocess,
its stdout parsed (the golden messages are in ``tests/unit/test_validate_messages.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests/support/fixtures/broken_flows"
IVR = Path(sys.executable).parent / "ivr"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(IVR), "validate", *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_json_of_the_sample_flows_says_ok() -> None:
    proc = run(str(ROOT / "flows"), "--prompts", str(ROOT / "prompts"), "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["errors"] == 0
    assert doc["flows_valid"] == len(list((ROOT / "flows").glob("*.yaml")))


def test_json_of_the_broken_flows_lists_every_error_once() -> None:
    proc = run(str(BROKEN), "--format", "json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    files = {Path(d["file"]).name for d in doc["diagnostics"]}
    assert files == {p.name for p in BROKEN.glob("*.yaml")}
    assert all(d["severity"] == "error" and d["line"] >= 1 for d in doc["diagnostics"])
    # the typo's three cut-off nodes are in its error, not errors of their own
    typo = [d for d in doc["diagnostics"] if d["file"].endswith("menu_target_typo.yaml")]
    assert [d["node"] for d in typo] == ["menu", "old_promo"]


def test_github_prints_one_annotation_per_diagnostic() -> None:
    proc = run(str(BROKEN), "--format", "github")
    assert proc.returncode == 1 and proc.stderr == ""
    *annotations, summary = proc.stdout.splitlines()
    assert all(a.startswith(f"::error file={BROKEN}/") for a in annotations)
    assert all(",line=" in a and ",col=" in a for a in annotations)
    assert summary == f"0 flow(s) valid, {len(list(BROKEN.glob('*.yaml')))} with errors"
