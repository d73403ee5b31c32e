"""Per-node figures (ivr.reporting.node_stats) over hand-made records; every expected figure is
worked out next to its records."""

from __future__ import annotations

from ivr.call.record import CallRecord, InputEvent, Outcome
from ivr.reporting.node_stats import DEFINITIONS, NODE_KEYS, node_stats

T0 = 1_000_000.0


def call(
    call_id: str,
    path: list[str],
    outcome: Outcome | None,
    *,
    at: list[float] | None = None,
    duration: float = 60.0,
    inputs: list[InputEvent] | None = None,
) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        flow="bank",
        flow_version="v1",
        started_at=T0,
        ended_at=None if outcome is None else T0 + duration,
        path=path,
        path_at=at if at is not None else [],
        inputs=inputs or [],
        outcome=outcome,
        end_node=path[-1] if path else None,
    )


def miss(node: str, kind: str, at_s: float) -> InputEvent:
    return InputEvent(node=node, kind=kind, value="", at_s=at_s)


def test_calls_hangups_and_failed_endings() -> None:
    records = [
        call("a", ["hello", "menu", "balance"], "self_service"),
        call("b", ["hello", "menu"], "abandoned"),  # hung up at the menu
        call("c", ["hello", "menu"], "abandoned"),
        call("d", ["hello", "menu"], "failed_in_ivr"),  # the menu failed, the flow hung up
        call("e", ["hello", "menu", "agent"], "abandoned"),  # gave up in the queue
        call("f", ["hello", "menu", "agent"], "transferred"),
        call("live", ["hello", "menu"], None),  # in progress: nowhere
    ]
    stats = node_stats(records)
    assert list(stats) == ["hello", "menu", "balance", "agent"]
    assert stats["hello"]["calls"] == 6 and stats["hello"]["hangups"] == 0
    assert stats["menu"]["calls"] == 6
    assert stats["menu"]["hangups"] == 2  # b, c
    assert stats["menu"]["failed_in_ivr"] == 1  # d
    assert stats["agent"] == {**stats["agent"], "calls": 2, "hangups": 1, "failed_in_ivr": 0}
    assert stats["balance"]["hangups"] == 0  # self_service is no drop-off
    assert set(stats["hello"]) == set(NODE_KEYS) == set(DEFINITIONS)


def test_no_input_and_no_match_rates_per_visit() -> None:
    records = [
        # two silences then a wrong key at the menu, then a good one
        call(
            "a",
            ["hello", "menu", "balance"],
            "self_service",
            inputs=[
                miss("menu", "no_input", 5),
                miss("menu", "no_input", 10),
                miss("menu", "no_match", 15),
                InputEvent("menu", "dtmf", "1", 20),
            ],
        ),
        call("b", ["hello", "menu", "balance"], "self_service"),
        call("c", ["hello", "menu"], "abandoned", inputs=[miss("menu", "no_match", 4)]),
        call("d", ["hello", "menu"], "failed_in_ivr", inputs=[miss("menu", "no_input", 4)]),
    ]
    stats = node_stats(records)
    # 4 visits of the menu: 3 no_input, 2 no_match
    assert stats["menu"]["visits"] == 4
    assert stats["menu"]["no_input_rate"] == 0.75
    assert stats["menu"]["no_match_rate"] == 0.5
    assert stats["hello"]["no_input_rate"] == 0.0  # visited, nothing missed
    assert stats["balance"]["no_match_rate"] == 0.0


def test_time_per_node_from_path_at_and_records_without_it_are_not_timed() -> None:
    records = [
        # hello 0..4 s, menu 4..12 s, balance 12 s to the end at 30 s
        call("a", ["hello", "menu", "balance"], "self_service", at=[0, 4, 12], duration=30),
        # hello 0..6, menu 6..20, balance 20..22
        call("b", ["hello", "menu", "balance"], "self_service", at=[0, 6, 20], duration=22),
        # hello 0..2, menu 2..5 (hung up there at 5 s)
        call("c", ["hello", "menu"], "abandoned", at=[0, 2], duration=5),
        # stored before path_at: counted, never timed
        call("old", ["hello", "menu"], "abandoned", duration=500),
    ]
    stats = node_stats(records)
    assert stats["hello"]["calls"] == 4
    # hello: 4, 6, 2 -> mean 4, median (2nd of 2, 4, 6) 4
    assert (stats["hello"]["avg_time_s"], stats["hello"]["p50_time_s"]) == (4.0, 4.0)
    # menu: 8, 14, 3 -> mean 25/3, median 8
    assert stats["menu"]["avg_time_s"] == round(25 / 3, 3)
    assert stats["menu"]["p50_time_s"] == 8.0
    # balance: 18, 2 -> mean 10, median (1st of 2) 2
    assert (stats["balance"]["avg_time_s"], stats["balance"]["p50_time_s"]) == (10.0, 2.0)


def test_untimed_node_has_no_time() -> None:
    stats = node_stats([call("old", ["hello"], "failed_in_ivr")])
    assert stats["hello"]["avg_time_s"] is None and stats["hello"]["p50_time_s"] is None
    assert stats["hello"]["failed_in_ivr"] == 1


def test_a_loop_counts_each_visit() -> None:
    # the caller goes back to the menu twice (menu -> info -> menu -> info -> menu -> hangs up)
    path = ["menu", "info", "menu", "info", "menu"]
    record = call(
        "loop",
        path,
        "abandoned",
        at=[0, 5, 15, 17, 30],
        duration=40,
        # a silence on the 2nd menu visit, a wrong key on the 3rd
        inputs=[miss("menu", "no_input", 16), miss("menu", "no_match", 35)],
    )
    stats = node_stats([record])
    menu, info = stats["menu"], stats["info"]
    assert (menu["calls"], menu["visits"]) == (1, 3)
    assert (info["calls"], info["visits"]) == (1, 2)
    assert menu["hangups"] == 1 and info["hangups"] == 0
    assert menu["no_input_rate"] == round(1 / 3, 4)
    assert menu["no_match_rate"] == round(1 / 3, 4)
    # menu: 5, 2, 10 -> mean 17/3, median 5; info: 10, 13 -> mean 11.5, median 10
    assert menu["avg_time_s"] == round(17 / 3, 3) and menu["p50_time_s"] == 5.0
    assert (info["avg_time_s"], info["p50_time_s"]) == (11.5, 10.0)


def test_sub_flow_nodes_keep_their_prefix_and_get_their_inputs() -> None:
    # bank calls the sub-flow "pin" (its nodes are written pin:ask, pin:check); the input
    # events carry the bare node id "ask", and bank has an "ask" node of its own
    record = call(
        "sub",
        ["ask", "get_pin", "pin:ask", "pin:check", "bye"],
        "self_service",
        at=[0, 3, 3, 9, 10],
        duration=12,
        inputs=[miss("ask", "no_input", 2), miss("ask", "no_match", 6), miss("ask", "no_match", 8)],
    )
    stats = node_stats([record])
    assert list(stats) == ["ask", "get_pin", "pin:ask", "pin:check", "bye"]
    assert stats["ask"]["no_input_rate"] == 1.0 and stats["ask"]["no_match_rate"] == 0.0
    assert stats["pin:ask"]["no_match_rate"] == 2.0 and stats["pin:ask"]["no_input_rate"] == 0.0
    assert stats["pin:ask"]["avg_time_s"] == 6.0
    assert stats["get_pin"]["avg_time_s"] == 0.0
    assert stats["bye"]["avg_time_s"] == 2.0


def test_inputs_of_a_record_without_path_at_go_to_the_first_visit() -> None:
    record = call(
        "old", ["pin:ask", "pin:ask"], "failed_in_ivr", inputs=[miss("ask", "no_input", 9)]
    )
    stats = node_stats([record])
    assert stats["pin:ask"]["visits"] == 2
    assert stats["pin:ask"]["no_input_rate"] == 0.5
    assert stats["pin:ask"]["failed_in_ivr"] == 1


def test_no_records_and_empty_paths() -> None:
    assert node_stats([]) == {}
    assert node_stats([call("none", [], "error")]) == {}
