"""Smoke run of the FastAGI load benchmark (``benchmarks/agi_load.py --quick``), so it keeps
working: a real ``ivr serve`` subprocess and the bare handler, driven over loopback TCP."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("flow", "path"),
    [
        ("bank", "welcome > choose_language > opening_hours > main > balance"),
        ("main", "welcome > menu > support > goodbye (7 AGI commands per call)"),
    ],
)
def test_quick_benchmark_runs_without_failures(flow: str, path: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "agi_load.py"), "--quick", "--flow", flow],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    summary = re.search(r"^failures: ours=(\d+) bare=(\d+)$", proc.stdout, re.MULTILINE)
    assert summary is not None, out
    assert summary.groups() == ("0", "0"), out
    rate = re.search(r"^calls/s\s+([\d.]+)\s+([\d.]+)", proc.stdout, re.MULTILINE)
    assert rate is not None and float(rate.group(1)) > 0 and float(rate.group(2)) > 0, out
    assert "calls actually held" in proc.stdout and "FAILED" not in proc.stdout, out
    assert f"path: {path}" in proc.stdout, out  # every call's record checked against it
    # --quick is too short to judge CPU (10 ms clock ticks): it says so
    assert "target not measured: <= 1.5x bare's server CPU" in proc.stdout, out
