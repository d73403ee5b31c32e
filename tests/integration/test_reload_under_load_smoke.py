"""Smoke run of the hot-reload-under-load benchmark (``benchmarks/reload_under_load.py
--quick``): 20 rewrites of the flows directory (4 of them broken) while 20 fake-Asterisk
callers keep calling; no call fails and every record names a version that served."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_reload_under_load_has_no_failures() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "reload_under_load.py"), "--quick",
         "--quiet"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"^failures: 0$", proc.stdout, re.MULTILINE), out
    assert re.search(r"^unknown versions: 0$", proc.stdout, re.MULTILINE), out
    assert re.search(r"^wrong end node for the version: 0$", proc.stdout, re.MULTILINE), out
    reloads = re.search(
        r"^reloads: (\d+) \(ok=(\d+) partial=(\d+) error=0\)", proc.stdout, re.MULTILINE
    )
    assert reloads is not None and int(reloads.group(1)) >= 20, out
    assert int(reloads.group(3)) >= 4, out  # the broken rewrites kept their version
    calls = re.search(r"^calls: (\d+) ", proc.stdout, re.MULTILINE)
    assert calls is not None and int(calls.group(1)) >= 100, out
    assert "broken rewrites that kept the previous version: 4" in proc.stdout, out
