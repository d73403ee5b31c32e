"""Flow pictures: DOT text from a flow, SVG through Graphviz, the ``ivr graph`` command."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.flowkit import flow

from ivr.cli import main
from ivr.errors import GraphvizError
from ivr.flow import model as m
from ivr.flow.graph import flow_dot, flow_svg, node_kind, render_dot
from ivr.flow.loader import load_flow
from ivr.flow.model_values import HANGUP
from ivr.flow.node import Node
from ivr.flow.reachability import analyse, flow_edges

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "flows" / "bank.yaml"
SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz 'dot' missing: apt-get install graphviz"
)


def svg_tree(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def svg_groups(root: ET.Element, cls: str) -> dict[str, ET.Element]:
    """``<g class="node ...">`` (or ``edge``) elements by their ``<title>``."""
    out = {}
    for g in root.iter(f"{SVG}g"):
        if cls in (g.get("class") or "").split():
            title = g.find(f"{SVG}title")
            assert title is not None and title.text is not None
            out[title.text] = g
    return out


def texts(el: ET.Element) -> list[str]:
    return [t.text or "" for t in el.iter(f"{SVG}text")]


def all_text(el: ET.Element) -> str:
    return "\n".join(texts(el))


LOOPING = """
    start: welcome
    nodes:
      welcome:
        play: "Hello."
        next: loop
      loop:
        menu:
          prompt: "Press 1 for news."
          options: {"1": news, "9": bye}
          otherwise: loop
      news:
        play: "No news today."
        next: inner
      inner:
        menu:
          prompt: "Press 1 for more news."
          options: {"1": news}
          otherwise: inner
      bye: {hangup: true}
"""


# --- edges and analysis (no Graphviz needed) --------------------------------------------------


def test_bank_edges_carry_digits_words_and_exits() -> None:
    edges = {(e.source, e.target, e.label) for e in flow_edges(load_flow(BANK))}
    assert ("main", "balance", "1 (balance, account balance)") in edges
    assert ("main", "lost_card", "2 (lost card, stolen card)") in edges
    assert ("main", "main", "* repeat") in edges  # repeat: a loop on the menu itself
    assert ("offer", "main", "9 back") in edges  # back: the menu that led here
    assert ("choose_language", "opening_hours", "no_input") in edges
    assert ("main", "agent", "otherwise") in edges
    assert ("opening_hours", "holiday", "holiday") in edges
    assert ("opening_hours", "closed", "closed") in edges
    assert ("fetch_balance", "lookup_failed", "on_error") in edges
    assert ("agent", "agents_busy", "unavailable") in edges  # the queue node
    assert ("agent", "agents_busy", "timeout") in edges
    assert ("agent", "callback_booked", "1 callback") in edges
    assert ("agent", "hangup", "after the agent") in edges
    assert ("goodbye", "hangup", "") in edges


def test_transfer_on_fail_and_speech_menus() -> None:
    f = load_flow(ROOT / "flows" / "voice.yaml")
    edges = {(e.source, e.target, e.label) for e in flow_edges(f)}
    assert ("agent", "goodbye", "on_fail") in edges
    dot = flow_dot(f)
    assert "to Local/1001@agents" in dot and "dtmf + speech" in dot


def test_bank_has_no_dead_end_and_nothing_unreachable() -> None:
    problems = analyse(load_flow(BANK))
    assert problems.dead_ends == frozenset()
    assert problems.unreachable == frozenset()


def test_menus_that_never_end_the_call_are_dead_ends() -> None:
    problems = analyse(flow(LOOPING))
    assert problems.dead_ends == {"news", "inner"}  # loop still reaches bye with 9
    assert problems.unreachable == frozenset()


def test_unreachable_node_is_found() -> None:
    f = flow(LOOPING)
    orphan = m.PlayNode(
        id="orphan",
        line=99,
        prompt=f.nodes["welcome"].prompt,  # type: ignore[union-attr]
        next="bye",
    )
    f = dataclasses.replace(f, nodes={**f.nodes, "orphan": orphan})
    problems = analyse(f)
    assert problems.unreachable == {"orphan"}
    assert "orphan" not in problems.dead_ends  # it does lead to the hang-up


def test_branch_conditions_are_shortened_and_menus_without_otherwise_use_then() -> None:
    f = flow("""
        start: route
        nodes:
          route:
            branch:
              - {if: 'startswith(caller_id, "86") and hour < 9 and weekday != "sun"', goto: a}
            else: b
          a:
            menu:
              prompt: "Hi"
              options: {"1": b}
              no_input: {then: b}
              no_match: {then: b}
          b: {hangup: true}
    """)
    labels = {(e.source, e.target): e.label for e in flow_edges(f) if e.source == "route"}
    assert labels[("route", "b")] == "else"
    cond = labels[("route", "a")]
    assert cond.startswith('if startswith(caller_id, "86")') and cond.endswith("…")
    assert len(cond) <= 40
    # both failures have a `then`: the placeholder `otherwise` is not drawn
    assert {e.label for e in flow_edges(f) if e.source == "a"} == {"1", "no_input", "no_match"}


def test_call_nodes_point_at_the_sub_flow() -> None:
    f = flow("""
        start: cards
        nodes:
          cards: {call: card_services, next: bye}
          bye: {hangup: true}
    """)
    edges = {(e.target, e.label, e.style) for e in flow_edges(f) if e.source == "cards"}
    assert edges == {("flow:card_services", "call", "call"), ("bye", "next (after return)", "next")}
    dot = flow_dot(f)
    assert '"flow:card_services" [label=<' in dot and "sub-flow" in dot


def test_queue_and_survey_nodes() -> None:
    f = flow("""
        start: agent
        surveys:
          after_call:
            questions:
              - {id: satisfied, prompt: "How satisfied were you, 1 to 5?"}
        nodes:
          agent:
            queue:
              name: cards
              callback: {prompt: "To be called back instead, press 1.", then: booked,
                         dial: "PJSIP/{number}@callback-line"}
              when_unavailable: busy
              when_timeout: busy
            survey: after_call
            next: rate
          rate: {survey: after_call, next: hangup}
          booked: {play: "We will call you back.", next: hangup}
          busy: {play: "All agents are busy.", next: hangup}
    """)
    edges = {(e.source, e.target, e.label) for e in flow_edges(f)}
    assert {
        ("agent", "booked", "1 callback"),
        ("agent", "busy", "unavailable"),
        ("agent", "busy", "timeout"),
        ("agent", "rate", "after the agent"),
        ("rate", "hangup", ""),
    } <= edges
    assert node_kind(f.nodes["agent"]) == "queue" and node_kind(f.nodes["rate"]) == "survey"
    dot = flow_dot(f)
    assert "queue cards" in dot and "then survey after_call" in dot
    assert analyse(f).dead_ends == frozenset()


def test_node_kinds_added_later_are_drawn_from_their_attributes() -> None:
    @dataclass(frozen=True)
    class FaxNode(Node):
        to: str
        on_fail: str
        next: str = HANGUP

    f = flow(LOOPING)
    fax = FaxNode(id="fax", line=1, to="+33100000000", on_fail="bye")
    f = dataclasses.replace(f, nodes={**f.nodes, "fax": fax})  # type: ignore[dict-item]
    assert node_kind(fax) == "fax"
    edges = {(e.target, e.label) for e in flow_edges(f) if e.source == "fax"}
    assert edges == {("bye", "on_fail"), ("hangup", "next")}
    assert "to +33100000000" in flow_dot(f)


# --- DOT and SVG ------------------------------------------------------------------------------


@needs_dot
def test_every_bank_node_and_edge_label_is_in_the_svg() -> None:
    f = load_flow(BANK)
    root = svg_tree(flow_svg(f))
    assert root.tag == f"{SVG}svg"
    nodes = svg_groups(root, "node")
    assert set(f.nodes) | {"hangup"} == set(nodes)
    for nid, node in f.nodes.items():
        g = nodes[nid]
        assert texts(g)[0] == nid
        assert texts(g)[1] == node_kind(node)
        assert f"kind-{node_kind(node)}" in (g.get("class") or "")
    assert "start" in (nodes["welcome"].get("class") or "")
    edge_text = all_text(root)
    for label in (
        "1 (balance, account balance)",
        "2 (lost card, stolen card)",
        "0 (agent, operator)",
        "3 (offers, instalments)",
        "1 (yes)",
        "2 (no)",
        "* repeat",
        "9 back",
        "no_input",
        "no_match",
        "otherwise",
        "open",
        "closed",
        "holiday",
        "on_error",
        "unavailable",
        "timeout",
        "1 callback",
        "after the agent",
        "next",
    ):
        assert label in edge_text.splitlines(), label
    # queue and hours details
    assert "queue default" in texts(nodes["agent"])
    assert "then survey after_call" in texts(nodes["agent"])
    assert "mon-fri 08:00-20:00" in texts(nodes["opening_hours"])
    assert "sat 09:00-12:00, 13:00-17:00" in texts(nodes["opening_hours"])


@needs_dot
def test_dead_end_and_unreachable_nodes_are_marked() -> None:
    f = flow(LOOPING)
    orphan = m.PlayNode(
        id="orphan",
        line=99,
        prompt=f.nodes["welcome"].prompt,  # type: ignore[union-attr]
        next="bye",
    )
    f = dataclasses.replace(f, nodes={**f.nodes, "orphan": orphan})
    root = svg_tree(flow_svg(f))
    nodes = svg_groups(root, "node")
    for nid in ("news", "inner"):
        assert "dead-end" in (nodes[nid].get("class") or "").split()
        assert "⚠ dead end: cannot end the call" in texts(nodes[nid])
        shape = next(el for el in nodes[nid] if el.tag in (f"{SVG}polygon", f"{SVG}path"))
        assert shape.get("stroke") == "#c62828" and shape.get("fill") == "#ffe3e3"
    assert "unreachable" in (nodes["orphan"].get("class") or "").split()
    assert "unreachable from start" in texts(nodes["orphan"])
    for nid in ("welcome", "loop", "bye"):
        classes = (nodes[nid].get("class") or "").split()
        assert "dead-end" not in classes and "unreachable" not in classes
    assert "⚠ 2 dead end(s), 1 unreachable node(s)" in texts(root)


@needs_dot
def test_quotes_markup_and_chinese_are_escaped() -> None:
    f = flow(
        """
        language: zh
        start: hi
        nodes:
          hi:
            play: '说 "你好" <b>&amp; A&B'
            next: check
          check:
            branch:
              - if: caller_name == "O'Brien <x>"
                goto: bye
            else: bye
          bye: {hangup: true}
    """,
        name="中文",
    )
    dot = flow_dot(f)
    assert "<b>" not in dot and '"你好"' not in dot  # only escaped forms in the DOT text
    root = svg_tree(flow_svg(f))
    nodes = svg_groups(root, "node")
    assert '说 "你好" <b>&amp; A&B' in texts(nodes["hi"])
    assert 'if caller_name == "O\'Brien <x>"' in all_text(root).splitlines()
    assert "中文" in texts(root)


@needs_dot
def test_odd_names_stay_valid_dot() -> None:
    f = flow(LOOPING)
    f = dataclasses.replace(f, name='we"ird\\', start="welcome")
    hello = f.nodes["welcome"]
    weird = dataclasses.replace(hello, id='a "b" \\', next="bye")
    f = dataclasses.replace(
        f, nodes={**f.nodes, weird.id: weird, "welcome": dataclasses.replace(hello, next=weird.id)}
    )
    nodes = {k.rstrip(): g for k, g in svg_groups(svg_tree(flow_svg(f)), "node").items()}
    # a trailing backslash gets a space so it cannot swallow the closing quote in the DOT id
    assert 'a "b" \\' in nodes
    assert texts(nodes['a "b" \\'])[0] == 'a "b" \\'  # the label is exact


@needs_dot
def test_render_dot_reports_dot_failures() -> None:
    with pytest.raises(GraphvizError, match="Graphviz 'dot' failed"):
        render_dot("digraph { a -> ")
    assert render_dot("digraph { a -> b }", "dot").startswith(b"digraph")


def fake_dot(directory: Path, script: str) -> None:
    exe = directory / "dot"
    exe.write_text(f"#!/bin/sh\n{script}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


def test_missing_dot_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no dot anywhere
    with pytest.raises(GraphvizError) as info:
        flow_svg(load_flow(BANK))
    assert "Debian package 'graphviz'" in str(info.value)
    assert "apt-get install graphviz" in str(info.value)


def test_slow_dot_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dot(tmp_path, "exec sleep 5")
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    with pytest.raises(GraphvizError, match=r"took longer than 0\.3 s"):
        flow_svg(load_flow(BANK), timeout_s=0.3)


# --- the command ------------------------------------------------------------------------------


@needs_dot
def test_cli_writes_a_valid_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bank.svg"
    assert main(["graph", str(BANK), "-o", str(out)]) == 0
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    assert "main" in svg_groups(root, "node")
    assert "wrote" in capsys.readouterr().err


def test_cli_prints_dot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(BANK), "--format", "dot"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('digraph "flow_bank" {') and "main -> balance" in out
    target = tmp_path / "bank.gv"
    assert main(["graph", str(BANK), "-o", str(target)]) == 0  # format from the suffix
    assert target.read_text(encoding="utf-8") == out


def test_cli_without_dot_exits_2_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["graph", str(BANK), "-o", str(tmp_path / "x.svg")]) == 2
    err = capsys.readouterr().err
    assert "ivr: Graphviz 'dot' was not found" in err and "'graphviz'" in err
    assert not (tmp_path / "x.svg").exists()


def test_cli_reports_flow_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: a\nnodes:\n  a: {goto: nowhere}\n", encoding="utf-8")
    assert main(["graph", str(bad)]) == 2
    assert "bad.yaml:3" in capsys.readouterr().err


@needs_dot
def test_console_script_runs(tmp_path: Path) -> None:
    ivr = ROOT / ".venv" / "bin" / "ivr"
    if not ivr.exists():
        pytest.skip("no .venv/bin/ivr")
    out = tmp_path / "out.svg"
    done = subprocess.run(
        [str(ivr), "graph", str(BANK), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ET.parse(out)
