"""``split`` nodes: the share of callers per branch, the same branch for a caller every time,
a recorded branch (with or without caller id), the loader's errors, and ``ivr report --split``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from support.flowkit import flow, run

from ivr.call.record import CallRecord, InputEvent
from ivr.cli import main
from ivr.errors import FlowErrors
from ivr.flow.model import SplitNode
from ivr.flow.split import SplitBranch, pick_branch, split_point
from ivr.reporting.split import format_split, split_report, wilson

AB = """
start: ab
nodes:
  ab:
    split:
      - {percent: 10, goto: short, label: short greeting}
      - {percent: 90, goto: long}
  short: {play: "Hi.", next: hangup, served: true}
  long: {play: "Hello, and thank you for calling.", next: hangup, served: true}
"""
CALLERS = [f"+8613{n:09d}" for n in range(10_000)]  # synthetic caller ids


def branches(*shares: float) -> tuple[SplitBranch, ...]:
    return tuple(SplitBranch(p, f"b{i}", f"b{i}") for i, p in enumerate(shares))


@pytest.mark.parametrize("shares", [(10, 90), (50, 50), (20, 30, 50), (1, 2.5, 96.5)])
def test_each_branch_gets_its_share_of_10000_callers(shares: tuple[float, ...]) -> None:
    split = branches(*shares)
    counts = Counter(pick_branch(split, "bank", caller, "c1").label for caller in CALLERS)
    for i, percent in enumerate(shares):
        assert abs(counts[f"b{i}"] / len(CALLERS) * 100 - percent) <= 1.5, (counts, shares)


def test_a_caller_keeps_their_branch_and_each_flow_splits_on_its_own() -> None:
    split = branches(50, 50)
    first = [pick_branch(split, "bank", c, f"call-{i}").label for i, c in enumerate(CALLERS[:500])]
    again = [pick_branch(split, "bank", c, f"other-{i}").label for i, c in enumerate(CALLERS[:500])]
    assert first == again  # another call of the same caller: the same branch
    other_flow = [pick_branch(split, "offer", c, "x").label for c in CALLERS[:500]]
    assert other_flow != first  # independent per flow (not the same halves every time)
    assert 200 < sum(a == b for a, b in zip(first, other_flow, strict=True)) < 300


def test_the_point_is_sha256_not_the_process_hash() -> None:
    # fixed for ever (the first 8 bytes of sha256("bank\0caller:+8613800000000") are
    # c18f2c38c0bac3f5): Python's hash() of a str changes with every process
    assert split_point("bank", "caller:+8613800000000") == pytest.approx(
        0xC18F2C38C0BAC3F5 * 100 / 2**64
    )
    assert split_point("bank", "caller:+8613800000000") == pytest.approx(75.609089265)
    assert 0 <= split_point("a", "b") < 100


@pytest.mark.parametrize("caller", ["", "anonymous", "Unknown", " restricted "])
def test_without_a_caller_id_the_call_id_picks_a_random_stable_branch(caller: str) -> None:
    split = branches(30, 70)
    calls = [f"1733{n:06d}.{n % 97}" for n in range(10_000)]
    counts = Counter(pick_branch(split, "bank", caller, call).label for call in calls)
    assert abs(counts["b0"] / len(calls) * 100 - 30) <= 1.5  # not everyone on one branch
    assert {pick_branch(split, "bank", caller, calls[7]).label for _ in range(5)} == {
        pick_branch(split, "bank", caller, calls[7]).label
    }


async def test_the_call_records_its_branch_and_goes_there() -> None:
    f = flow(AB, name="ab")
    seen: dict[str, str] = {}
    for caller in CALLERS[:200]:
        record, _ = await run(f, caller=caller)
        (event,) = [e for e in record.inputs if e.kind == "split"]
        assert event.node == "ab"
        assert record.path[1] == ("short" if event.value == "short greeting" else "long")
        seen[caller] = event.value
    assert set(seen.values()) == {"short greeting", "long"}
    record, _ = await run(f, caller=CALLERS[3])
    assert [e.value for e in record.inputs if e.kind == "split"] == [seen[CALLERS[3]]]


def test_the_node_and_its_exits() -> None:
    node = flow(AB, name="ab").nodes["ab"]
    assert isinstance(node, SplitNode)
    assert [b.percent for b in node.branches] == [10.0, 90.0]
    assert [(e.target, e.label) for e in node.exits()] == [
        ("short", "10% short greeting"),
        ("long", "90%"),
    ]


def errors_of(text: str) -> list[str]:
    with pytest.raises(FlowErrors) as exc:
        flow(text, name="f")
    return [str(e) for e in exc.value.errors]


def test_percentages_that_do_not_add_up_to_100_are_a_located_error() -> None:
    (error,) = errors_of(AB.replace("percent: 90", "percent: 85"))
    assert error.startswith("f.yaml:6:7: node 'ab': the percentages (10, 85) add up to 95, not 100")
    assert "change them so that every caller has a branch" in error


def test_two_branches_with_one_label_are_an_error() -> None:
    text = AB.replace("goto: short, label: short greeting", "goto: long")
    (error,) = errors_of(text)
    assert "node 'ab': two branches are both called 'long'; give each a 'label'" in error


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("percent: 10", "percent: 0"),  # a branch nobody takes
        ("percent: 10", "percent: 110"),
        ("      - {percent: 90, goto: long}\n", ""),  # a split of one branch
        ("goto: long}", "goto: nowhere}"),  # a dangling target
    ],
)
def test_the_schema_and_the_graph_checks_refuse_bad_splits(old: str, new: str) -> None:
    assert old in AB
    assert any("node 'ab'" in e for e in errors_of(AB.replace(old, new)))


# ---- ivr report --split ---------------------------------------------------------------------


def record(n: int, branch: str | None, outcome: str | None) -> CallRecord:
    rec = CallRecord(call_id=f"c{n}", flow="ab", flow_version="1", caller="1", started_at=1.0)
    rec.outcome = outcome  # type: ignore[assignment]
    if branch is not None:
        rec.inputs.append(InputEvent(node="ab", kind="split", value=branch, at_s=0.1))
    return rec


def sample() -> list[CallRecord]:
    out = [record(i, "A", "self_service") for i in range(30)]
    out += [record(100 + i, "A", "abandoned") for i in range(10)]
    out += [record(200 + i, "B", "self_service") for i in range(6)]
    out += [record(210 + i, "B", "failed_in_ivr") for i in range(4)]
    out += [record(300 + i, "B", "transferred") for i in range(9)]
    out += [record(400, "B", "error"), record(401, "B", None), record(402, None, "abandoned")]
    return out


def test_the_report_compares_the_branches() -> None:
    data = split_report(sample(), "ab")
    assert data["calls"] == 60
    a, b = data["branches"]["A"], data["branches"]["B"]
    assert (a["calls"], a["self_service_rate"], a["abandon_rate"]) == (40, 0.75, 0.25)
    assert (b["calls"], b["in_progress"], b["self_service_rate"]) == (20, 1, 0.3)
    assert (b["transfer_rate"], b["error_rate"], b["abandon_rate"]) == (0.45, 0.05, 0.0)
    # contained: ended in the IVR (no queue, transfer or error): 6 served + 4 failed of 20
    assert (b["failed_in_ivr_rate"], b["containment_rate"]) == (0.2, 0.5)
    assert (a["failed_in_ivr_rate"], a["containment_rate"]) == (0.0, 1.0)
    assert a["share"] == pytest.approx(0.6667)
    low, high = a["self_service_ci95"]
    assert low < 0.75 < high
    assert split_report(sample(), "other")["branches"] == {}
    text = format_split(data)
    assert "Split 'ab': 60 finished call(s)" in text
    assert any(line.split()[:3] == ["A", "40", "66.7%"] for line in text.splitlines())


def test_wilson_interval() -> None:
    assert wilson(0, 0) is None
    assert wilson(0, 10) == [0.0, 0.2775]
    low, high = wilson(50, 100) or [0, 0]
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)


def test_ivr_report_split_reads_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def records(*_: object) -> list[CallRecord]:
        return sample()

    db = tmp_path / "calls.db"
    db.write_bytes(b"")
    monkeypatch.setattr("ivr.cli._read_records", records)
    assert main(["report", "--db", str(db), "--flow", "ab", "--split", "ab", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(data["branches"]) == ["A", "B"]
    assert main(["report", "--db", str(db), "--split", "ab"]) == 0
    assert "self 95% CI" in capsys.readouterr().out
