"""Smoke run of the SIPp load benchmark (``benchmarks/sipp_load.py --quick``), so it keeps
working: 10 calls at 2/s through the lab's Asterisk into a real ``ivr serve``, then the same
against the bare FastAGI baseline (both servers up, the dialplan switched between them and
switched back). Needs the lab (root); about 40 s."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.lab import Lab

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.asterisk  # the lab needs root and sipp, like every e2e test


def test_quick_sipp_benchmark_runs_without_failures() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sipp_load.py"), "--quick"],
        capture_output=True, text=True, timeout=150, cwd=ROOT,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(
        r"^RESULT: max_rate=2/s max_concurrent=\d+ failed_steps=0$", proc.stdout, re.MULTILINE
    ), out
    assert "records 10 new, 10 with self_service" in proc.stdout, out
    assert "bare server: 10 calls saw the full command sequence" in proc.stdout, out
    ivr_row = re.search(r"^ivr serve \(.*\n.*\n\s+2\s+10\s+10\s+0\s", proc.stdout, re.MULTILINE)
    assert ivr_row is not None, out
    # the lab's calls go to 127.0.0.1 again, as every other test expects
    assert "IVR_AGI_DEFAULT_HOST=127.0.0.1\n" in Lab().cli("dialplan show globals")
