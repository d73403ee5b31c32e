"""Smoke run of the cluster benchmark (``benchmarks/cluster_load.py --quick``, root: it starts a
throw-away PostgreSQL as the ``postgres`` user), so it keeps working: call records from one
and two node processes on SQLite and on PostgreSQL, none missing, and two diallers over 1,000
due jobs placing each exactly once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ("sqlite, 1 node", "sqlite, 2 nodes", "postgresql, 1 node", "postgresql, 2 nodes")


def test_quick_cluster_benchmark_loses_no_record_and_dials_each_job_once() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cluster_load.py"), "--quick"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    rows = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"(\w+, \d nodes?)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+x([\d.]+)\s+(\d+)\s", line)
        if m:
            rows[m.group(1)] = m.groups()[1:]
    assert sorted(rows) == sorted(CONFIGS), out
    for rate, p50, p99, ratio, missing in rows.values():
        assert int(rate) > 0 and 0 < float(p50) <= float(p99) and float(ratio) > 0, out
        assert missing == "0", out
    assert rows["sqlite, 1 node"][3] == "1.00", out  # the baseline
    dial = re.search(
        r"^dial: 2 nodes on postgresql: jobs (\d+) originates (\d+) duplicates (\d+) "
        r"undialled (\d+) time [\d.]+ s \(node-a (\d+), node-b (\d+)\)$",
        proc.stdout,
        re.MULTILINE,
    )
    assert dial is not None, out
    jobs, originates, duplicates, undialled, on_a, on_b = map(int, dial.groups())
    assert (jobs, originates, duplicates, undialled) == (1000, 1000, 0, 0), out
    assert on_a + on_b == originates and on_a > 0 and on_b > 0, out  # both nodes took part
    assert "resume: measured by tests/e2e (see README)" in proc.stdout, out
