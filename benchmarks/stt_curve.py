"""The speech benchmark's figures from decoded utterances, and its trade-off curve as an SVG.

Each utterance is decoded once and kept as a :class:`Trial` (what was said, what the engine
made of it); every figure and every point of the curve is then ``decide()`` applied to the
kept recognitions with other thresholds. Nothing here runs an engine, so it is tested in-process
(``tests/unit/test_stt_curve.py``).

The curve sweeps the rejection threshold (``reject_below``) from 0 to 1: x is the share of
out-of-grammar utterances rejected, y the share of in-grammar utterances kept with the right
choice (accepted or confirmed). The engine's own threshold is marked on each line. The SVG is
written by hand: the project has no plotting library and a line chart does not need one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from ivr.speech.base import Recognition, Thresholds
from ivr.speech.decision import decide, thresholds_for

SWEEP_STEPS = 100  # reject_below = 0.00, 0.01, ..., 1.00, plus every confidence seen


@dataclass(frozen=True, slots=True)
class Trial:
    """One decoded utterance: its condition, the choice it must give (``None``: it is
    out-of-grammar and must be rejected) and the engine's recognition."""

    condition: str
    expected: str | None
    recognition: Recognition


@dataclass(frozen=True, slots=True)
class Rates:
    """The figures of some trials under one set of thresholds (shares, 0..1)."""

    in_grammar: float  # accept or confirm with the right choice
    accept_only: float  # accept with the right choice
    confirm: float  # in-grammar utterances asked to confirm (right choice or not)
    oog_rejected: float
    oog_accepted: float  # out-of-grammar taken as a choice without asking: the worst case
    n_in: int
    n_oog: int


def _share(hits: int, total: int) -> float:
    return hits / total if total else 0.0


def rates(trials: Iterable[Trial], thresholds: Thresholds) -> Rates:
    """In-grammar accuracy (accept or confirm with the right choice), accept-only accuracy,
    confirm rate and out-of-grammar rejection of ``trials`` under ``thresholds``."""
    right = accepted_right = confirmed = n_in = 0
    oog_rejected = oog_accepted = n_oog = 0
    for trial in trials:
        verdict = decide(trial.recognition, thresholds)
        if trial.expected is None:
            n_oog += 1
            oog_rejected += verdict == "reject"
            oog_accepted += verdict == "accept"
            continue
        n_in += 1
        confirmed += verdict == "confirm"
        if verdict != "reject" and trial.recognition.choice == trial.expected:
            right += 1
            accepted_right += verdict == "accept"
    return Rates(
        in_grammar=_share(right, n_in),
        accept_only=_share(accepted_right, n_in),
        confirm=_share(confirmed, n_in),
        oog_rejected=_share(oog_rejected, n_oog),
        oog_accepted=_share(oog_accepted, n_oog),
        n_in=n_in,
        n_oog=n_oog,
    )


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """At rejection threshold ``threshold``: in-grammar kept and out-of-grammar rejected."""

    threshold: float
    kept: float
    rejected: float


def point(trials: Sequence[Trial], engine: Thresholds, reject_below: float) -> CurvePoint:
    """The trade-off at one rejection threshold (a menu's ``min_confidence`` over ``engine``)."""
    r = rates(trials, thresholds_for(engine, min_confidence=reject_below))
    return CurvePoint(reject_below, r.in_grammar, r.oog_rejected)


def sweep(
    trials: Sequence[Trial], engine: Thresholds, steps: int = SWEEP_STEPS
) -> list[CurvePoint]:
    """The trade-off at ``steps + 1`` rejection thresholds from 0 to 1 and at every confidence
    the trials have (where the verdicts change), in threshold order."""
    grid = {i / steps for i in range(steps + 1)}
    seen = {t.recognition.confidence for t in trials if 0.0 <= t.recognition.confidence <= 1.0}
    return [point(trials, engine, threshold) for threshold in sorted(grid | seen)]


def best_with_rejection(points: Sequence[CurvePoint], min_rejected: float) -> CurvePoint | None:
    """The point keeping the most in-grammar utterances among those rejecting at least
    ``min_rejected`` of the out-of-grammar ones (lowest threshold on a tie), or ``None``."""
    fit = [p for p in points if p.rejected >= min_rejected]
    return max(fit, key=lambda p: (p.kept, -p.threshold)) if fit else None


@dataclass(frozen=True, slots=True)
class Curve:
    """One engine's line: its label, the swept points and the point at its own threshold."""

    label: str
    points: Sequence[CurvePoint]
    chosen: CurvePoint
    target: tuple[float, float] | None = None  # (min rejected, min kept): a dashed corner


# The plot area inside the picture, in SVG user units
WIDTH, HEIGHT = 640, 480
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 60
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def to_xy(rejected: float, kept: float) -> tuple[float, float]:
    """Where (out-of-grammar rejected, in-grammar kept), both 0..1, is drawn."""
    x = LEFT + rejected * (WIDTH - LEFT - RIGHT)
    y = HEIGHT - BOTTOM - kept * (HEIGHT - TOP - BOTTOM)
    return round(x, 1), round(y, 1)


def _text(x: float, y: float, text: str, **attrs: str) -> str:
    extra = "".join(f" {k.rstrip('_').replace('_', '-')}={quoteattr(v)}" for k, v in attrs.items())
    return f'<text x="{x}" y="{y}"{extra}>{escape(text)}</text>'


def _axes(title: str) -> list[str]:
    x0, y0 = to_xy(0, 0)
    x1, y1 = to_xy(1, 1)
    out = [
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        _text(WIDTH / 2, 24, title, text_anchor="middle", font_size="15"),
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/>',
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>',
    ]
    for tick in range(0, 101, 10):
        x, y = to_xy(tick / 100, tick / 100)
        grid = 'stroke="#ddd" class="grid"'
        out += [
            f'<line {grid} x1="{x}" y1="{y0}" x2="{x}" y2="{y1}"/>',
            f'<line {grid} x1="{x0}" y1="{y}" x2="{x1}" y2="{y}"/>',
            _text(x, y0 + 16, f"{tick}", text_anchor="middle", font_size="11", class_="tick"),
            _text(x0 - 6, y + 4, f"{tick}", text_anchor="end", font_size="11", class_="tick"),
        ]
    out += [
        _text(
            (x0 + x1) / 2,
            HEIGHT - 18,
            "out-of-grammar utterances rejected (%)",
            text_anchor="middle",
            font_size="13",
            class_="xlabel",
        ),
        _text(
            18,
            (y0 + y1) / 2,
            "in-grammar kept with the right choice (%)",
            text_anchor="middle",
            font_size="13",
            class_="ylabel",
            transform=f"rotate(-90 18 {(y0 + y1) / 2})",
        ),
    ]
    return out


def _line(curve: Curve, colour: str, row: int) -> list[str]:
    xy = " ".join(f"{x},{y}" for x, y in (to_xy(p.rejected, p.kept) for p in curve.points))
    cx, cy = to_xy(curve.chosen.rejected, curve.chosen.kept)
    mark = (
        f"{curve.label}: reject_below {curve.chosen.threshold:.2f} "
        f"({curve.chosen.kept:.0%} kept, {curve.chosen.rejected:.0%} rejected)"
    )
    lx, ly = to_xy(0.03, 0.30 - 0.06 * row)
    shade = []
    if curve.target is not None:  # the corner that meets the target, dashed
        (x0, y0), (x1, y1) = to_xy(*curve.target), to_xy(1, 1)
        shade.append(
            f'<path class="target" d="M {x0} {y1} L {x0} {y0} L {x1} {y0}" fill="none" '
            f'stroke="{colour}" stroke-dasharray="6 4"><title>{escape(curve.label)}: target '
            f"{curve.target[1]:.0%} kept, {curve.target[0]:.0%} rejected</title></path>"
        )
    return [
        *shade,
        f'<polyline class="curve" fill="none" stroke="{colour}" stroke-width="2" '
        f'points="{xy}"><title>{escape(curve.label)}</title></polyline>',
        f'<circle class="threshold" cx="{cx}" cy="{cy}" r="5" fill="{colour}" stroke="black">'
        f"<title>{escape(mark)}</title></circle>",
        f'<line class="legend" x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" '
        f'stroke="{colour}" stroke-width="2"/>',
        f'<circle cx="{lx + 12}" cy="{ly - 4}" r="4" fill="{colour}" stroke="black"/>',
        _text(lx + 30, ly, mark, font_size="12", class_="legend"),
    ]


def svg(curves: Sequence[Curve], title: str) -> str:
    """The trade-off curves as an SVG document: axes in %, one polyline per curve, each
    engine's threshold a circle (class ``threshold``) named in the legend, and the corner
    that meets its target (if any) dashed (class ``target``)."""
    body = _axes(title)
    for row, curve in enumerate(curves):
        body += _line(curve, COLOURS[row % len(COLOURS)], row)
    if any(curve.target for curve in curves):
        x, y = to_xy(0.03, 0.30 - 0.06 * len(curves))
        body.append(_text(x, y, "dashed: where each engine meets its target", font_size="12"))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">\n'
        + "\n".join(body)
        + "\n</svg>\n"
    )


def write_svg(path: Path, curves: Sequence[Curve], title: str) -> None:
    """Write :func:`svg` to ``path``, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg(curves, title), encoding="utf-8")
