"""The speech benchmark's figures and curve (``benchmarks/stt_curve.py``): verdicts computed from
kept recognitions under any threshold, and the SVG the curve is written as."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

from ivr.speech.base import Recognition, Thresholds

SVG_NS = "{http://www.w3.org/2000/svg}"
PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "stt_curve.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stt_curve", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["stt_curve"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


curve = _load()
ENGINE = Thresholds(0.3, 0.7)


def trial(expected: str | None, choice: str | None, confidence: float, condition: str = "clean"):
    return curve.Trial(condition, expected, Recognition("x", choice, confidence, "test"))


TRIALS = [
    trial("1", "1", 0.9),  # accepted, right
    trial("2", "2", 0.5),  # confirmed, right
    trial("3", "4", 0.8),  # accepted, wrong choice: not in-grammar accuracy
    trial("4", "4", 0.1),  # rejected although right
    trial(None, None, 0.0),  # out-of-grammar, nothing mapped: rejected
    trial(None, "1", 0.2),  # out-of-grammar, low confidence: rejected
    trial(None, "2", 0.6),  # out-of-grammar confirmed: neither rejected nor accepted
    trial(None, "3", 0.95),  # out-of-grammar accepted
]


def test_rates_follow_decide_with_the_given_thresholds() -> None:
    r = curve.rates(TRIALS, ENGINE)
    assert (r.n_in, r.n_oog) == (4, 4)
    assert r.in_grammar == pytest.approx(2 / 4)  # accept or confirm with the right choice
    assert r.accept_only == pytest.approx(1 / 4)
    assert r.confirm == pytest.approx(1 / 4)
    assert r.oog_rejected == pytest.approx(2 / 4)
    assert r.oog_accepted == pytest.approx(1 / 4)
    strict = curve.rates(TRIALS, Thresholds(0.65, 0.65))
    assert (strict.in_grammar, strict.oog_rejected) == (pytest.approx(1 / 4), pytest.approx(3 / 4))


def test_rates_of_no_trials_are_zero_not_an_error() -> None:
    r = curve.rates([], ENGINE)
    assert (r.in_grammar, r.oog_rejected, r.n_in, r.n_oog) == (0.0, 0.0, 0, 0)


def test_sweep_trades_kept_for_rejected_as_the_threshold_rises() -> None:
    points = curve.sweep(TRIALS, ENGINE, steps=20)
    # the grid and every confidence the trials have, where the verdicts change
    seen = {t.recognition.confidence for t in TRIALS}
    assert [p.threshold for p in points] == sorted({i / 20 for i in range(21)} | seen)
    # thresholds above the engine's accept_at are valid: accept_at moves along
    first, last = points[0], points[-1]
    assert (first.kept, first.rejected) == (pytest.approx(3 / 4), pytest.approx(1 / 4))
    assert (last.kept, last.rejected) == (0.0, 1.0)
    assert all(a.kept >= b.kept for a, b in itertools.pairwise(points))
    assert all(a.rejected <= b.rejected for a, b in itertools.pairwise(points))
    at = curve.point(TRIALS, ENGINE, 0.3)
    assert (at.kept, at.rejected) == (pytest.approx(2 / 4), pytest.approx(2 / 4))


def test_best_with_rejection_keeps_most_at_the_lowest_threshold() -> None:
    points = curve.sweep(TRIALS, ENGINE, steps=20)
    best = curve.best_with_rejection(points, 0.5)
    assert (best.threshold, best.kept) == (pytest.approx(0.25), pytest.approx(2 / 4))
    assert curve.best_with_rejection([curve.CurvePoint(0.0, 1.0, 0.2)], 0.9) is None


def _curves() -> list:
    en = curve.sweep(TRIALS, ENGINE, steps=10)
    ko = curve.sweep(TRIALS[1:], Thresholds(0.5, 0.5), steps=5)
    return [
        curve.Curve("pocketsphinx <en> & co", en, curve.point(TRIALS, ENGINE, 0.3), (0.9, 0.97)),
        curve.Curve("vosk (ko)", ko, curve.point(TRIALS[1:], Thresholds(0.5, 0.5), 0.5)),
    ]


def test_svg_is_well_formed_with_axes_one_line_per_engine_and_its_threshold(
    tmp_path: Path,
) -> None:
    curves = _curves()
    path = tmp_path / "out" / "curve.svg"
    curve.write_svg(path, curves, "trade-off <test>")
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG_NS}svg"
    texts = [t.text for t in root.iter(f"{SVG_NS}text")]
    assert "trade-off <test>" in texts  # escaped on the way out, read back whole
    assert len([x for x in root.iter(f"{SVG_NS}line") if x.get("class") == "axis"]) == 2
    ticks = [t.text for t in root.iter(f"{SVG_NS}text") if t.get("class") == "tick"]
    assert sorted(map(int, ticks)) == sorted(2 * list(range(0, 101, 10)))
    assert any("rejected" in (t or "") for t in texts) and any("kept" in (t or "") for t in texts)

    lines = list(root.iter(f"{SVG_NS}polyline"))
    assert len(lines) == len(curves)
    assert len({line.get("stroke") for line in lines}) == len(curves)
    for line, c in zip(lines, curves, strict=True):
        xy = [tuple(map(float, pair.split(","))) for pair in line.get("points", "").split()]
        assert xy == [curve.to_xy(p.rejected, p.kept) for p in c.points]

    marks = [m for m in root.iter(f"{SVG_NS}circle") if m.get("class") == "threshold"]
    assert len(marks) == len(curves)
    for mark, c in zip(marks, curves, strict=True):
        assert (float(mark.get("cx", "")), float(mark.get("cy", ""))) == curve.to_xy(
            c.chosen.rejected, c.chosen.kept
        )
    (target,) = [r for r in root.iter(f"{SVG_NS}path") if r.get("class") == "target"]
    (x0, y0), (x1, y1) = curve.to_xy(0.9, 0.97), curve.to_xy(1, 1)
    assert target.get("d") == f"M {x0} {y1} L {x0} {y0} L {x1} {y0}"
    legend = [t.text for t in root.iter(f"{SVG_NS}text") if t.get("class") == "legend"]
    assert legend[0].startswith("pocketsphinx <en> & co: reject_below 0.30 (50% kept")
    assert legend[1].startswith("vosk (ko): reject_below 0.50")


def test_the_plot_runs_from_bottom_left_to_top_right() -> None:
    (x0, y0), (x1, y1) = curve.to_xy(0, 0), curve.to_xy(1, 1)
    assert 0 < x0 < x1 < curve.WIDTH and 0 < y1 < y0 < curve.HEIGHT
