"""Smoke run of the chaos benchmark (``benchmarks/chaos.py --quick``, root: it mounts a tmpfs):
100 fake-Asterisk calls at 20 at once through the bank flow of the real ``ivr serve``, with no
fault, then while the database is locked past its busy timeout, while its disk is full (the
journal on another disk, then on the same one) and while garbage and non-UTF-8 peers connect.
Every call must end in the flow or the dialplan fallback, and every call that ran the flow
must leave its final record in SQLite."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("(0) no fault", "(a) database locked", "(b) disk full", "(b2) disk full", "(c) garbage")


def test_quick_chaos_loses_no_caller_and_no_record() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "chaos.py"), "--quick"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(
        r"^total: ended without flow or fallback 0, records lost 0, "
        r"phases failed 0$",
        proc.stdout,
        re.MULTILINE,
    ), out
    rows = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"(\(\w+\) .+?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+\s+\S+$", line)
        if m:
            rows[m.group(1)] = tuple(int(x) for x in m.group(2, 3, 4, 5, 6))
    for phase in PHASES:
        matching = [row for name, row in rows.items() if name.startswith(phase)]
        assert len(matching) == 1, (phase, out)
        offered, flow, fallback, neither, lost = matching[0]
        assert offered == 100 and flow + fallback == offered, (phase, out)
        assert neither == 0 and lost == 0, (phase, out)
        assert flow == offered, (phase, out)  # nothing here is a reason to fall back
    # the faults really happened: records went to the journal, and to memory on the full disk
    assert re.search(r"^\(a\) database locked .*journal peak [1-9]", proc.stdout, re.M), out
    assert re.search(r"^\(b2\) disk full .*journal refused: yes", proc.stdout, re.M), out
    assert re.search(r"non-UTF-8 callers 40/40 ran the flow", proc.stdout), out
    assert re.search(r"left open by the server 0$", proc.stdout, re.M), out
