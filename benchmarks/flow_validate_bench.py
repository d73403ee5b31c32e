"""Benchmark of flow validation as flows grow: ``parse_flow`` (YAML, schema, node building,
graph checks) on generated flows of 1k, 2k, 4k, 8k and 16k nodes.

Shapes:

* ``chain``: goto nodes in a row, then a hangup (a valid flow);
* ``dangling``: every goto names a missing node (two errors per node: the dangling target,
  with its did-you-mean lookup, and "never reached").

It prints the seconds per size (best of ``--repeat``) and the ratio to the size before: about
2 per doubling when validation is linear, about 4 when it is quadratic.

Run: ``.venv/bin/python benchmarks/flow_validate_bench.py [--sizes 1000,2000,...] [--repeat 3]``.
To measure another version of the code, put its ``ivr`` package first on the path:
``git archive REV ivr | tar -x -C /tmp/old && PYTHONPATH=/tmp/old .venv/bin/python ...``
(the first line says which ``ivr`` was measured).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import ivr
from ivr.errors import FlowErrors
from ivr.flow.loader import parse_flow

SIZES = (1000, 2000, 4000, 8000, 16000)


def chain(n: int) -> str:
    """``n`` goto nodes in a row ending in a hangup."""
    lines = [f"  g{i}: {{goto: g{i + 1}}}" for i in range(n - 1)]
    return _flow([*lines, f"  g{n - 1}: {{hangup: true}}"])


def dangling(n: int) -> str:
    """``n`` goto nodes that each go to a node that does not exist."""
    return _flow([f"  g{i}: {{goto: x{i}}}" for i in range(n)])


def _flow(nodes: list[str]) -> str:
    return "start: g0\nnodes:\n" + "\n".join(nodes) + "\n"


SHAPES: dict[str, Callable[[int], str]] = {"chain": chain, "dangling": dangling}


def validate_s(text: str, repeat: int) -> tuple[float, int]:
    """Best time of ``repeat`` validations of ``text``, and how many errors it has."""
    best, errors = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            parse_flow(text, file="bench.yaml", name="bench")
            errors = 0
        except FlowErrors as exc:
            errors = len(exc.errors)
        best = min(best, time.perf_counter() - start)
    return best, errors


def run(shape: str, sizes: list[int], repeat: int) -> None:
    print(f"\n{shape}:")
    print(f"{'nodes':>7} {'errors':>7} {'seconds':>9} {'x prev':>7}")
    previous: float | None = None
    for n in sizes:
        seconds, errors = validate_s(SHAPES[shape](n), repeat)
        ratio = f"{seconds / previous:7.2f}" if previous else f"{'':>7}"
        print(f"{n:>7} {errors:>7} {seconds:9.3f} {ratio}", flush=True)
        previous = seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="node counts, comma separated (default: %(default)s)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default: 3)")
    parser.add_argument("--shape", choices=[*SHAPES, "all"], default="all")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"ivr from {ivr.__file__}")
    for shape in SHAPES if args.shape == "all" else [args.shape]:
        run(shape, sizes, args.repeat)


if __name__ == "__main__":
    main()
