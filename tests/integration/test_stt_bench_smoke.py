"""Smoke run of the speech benchmark (``benchmarks/stt_bench.py --quick --voices 1``), so it keeps
working: real engines decode the held-out set, the figures add up and the curve is written.

It checks the shape of the report, not the targets: those are the engines' business and are
printed as PASS or FAIL."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support.speech_audio import have_espeak
from support.speech_sets import CONDITIONS, SETS

ROOT = Path(__file__).resolve().parents[2]
SVG_NS = "{http://www.w3.org/2000/svg}"
PERCENT = r"\s+(\d+\.\d)%"


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
def test_quick_benchmark_reports_every_figure_and_writes_the_curve(tmp_path: Path) -> None:
    svg = tmp_path / "curve.svg"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stt_bench.py"), "--quick", "--voices", "1",
         "--svg", str(svg)],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    ran = [("en", "pocketsphinx")]
    if "vosk: skipped" not in proc.stdout:
        ran.append(("ko", "vosk"))
    sections = re.split(r"^== ", proc.stdout, flags=re.MULTILINE)[1:]
    assert [s.split()[0] for s in sections] == [engine for _, engine in ran], out

    for (language, _), section in zip(ran, sections, strict=True):
        sset = SETS[(language, "test")]
        for name in ["clean", "white 20 dB", "pink 20 dB", "overall"]:
            row = re.search(
                rf"^\s*{name}" + PERCENT * 5 + r"\s+(\d+) in \+ (\d+) out$", section, re.MULTILINE
            )
            assert row is not None, f"no {name} row in\n{section}"
            figures = [float(x) for x in row.groups()[:5]]
            assert all(0.0 <= f <= 100.0 for f in figures), section
            conditions = len(CONDITIONS) if name == "overall" else 1
            assert int(row.group(6)) == len(sset.in_grammar) * conditions, section
            assert int(row.group(7)) == len(sset.out_of_grammar) * conditions, section
            in_grammar, accept_only, confirm, rejected, accepted = figures
            assert accept_only <= in_grammar <= accept_only + confirm + 0.15, section
            assert rejected + accepted <= 100.15, section
        assert re.search(r"target in-grammar >= \d+%: [\d.]+% (PASS|FAIL)$", section, re.M)
        assert re.search(r"^\s*OOG rejected(\s+\d+%){11}$", section, re.M), section
        assert re.search(r"target p95 < 300 ms at 10 streams: (PASS|FAIL)$", section, re.M)
    assert "target out-of-grammar rejection >= 90%" in sections[0], out

    root = ET.parse(svg).getroot()
    lines = list(root.iter(f"{SVG_NS}polyline"))
    assert len(lines) == len(ran)
    marks = [m for m in root.iter(f"{SVG_NS}circle") if m.get("class") == "threshold"]
    assert len(marks) == len(ran)
    assert f"trade-off curve: {svg}" in proc.stdout
