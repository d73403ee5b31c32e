"""Flow files cannot exhaust the server: anchors and aliases are refused on every path that
loads a flow (no "billion laughs"), nesting deeper than the stack is a flow error, and the graph
checks are linear in the size of the flow. (``/api/validate`` is in ``test_admin_api.py``.)"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.errors import FlowErrors
from ivr.flow import model as m
from ivr.flow.library import load_library
from ivr.flow.loader import load_flow, parse_flow
from ivr.flow.reachability import flow_edges
from ivr.flow.registry import FlowRegistry
from ivr.flow.source import load_source
from ivr.flow.validate import check_flow

REFUSED = "anchors and aliases are not allowed in flows; write the value out"
SMALL = "start: hello\nnodes:\n  hello: {play: {sound: hello-world}, next: hangup}\n"


def billion_laughs(levels: int = 9) -> str:
    """A ~380-byte flow whose ``variables:`` expand, alias by alias, to 9**levels values (387
    million at 9 levels). Its first anchor is at line 3, column 7."""
    lines = ["  a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "start: s\nvariables:\n" + "\n".join(lines) + "\nnodes:\n  s: {hangup: true}\n"


def goto_chain(n: int, *, dangling: bool = False) -> str:
    """``n`` goto nodes in a row, then a hangup; ``dangling``: each goes to a missing node."""
    lines = ["start: g0", "nodes:"]
    lines += [f"  g{i}: {{goto: {'x' if dangling else 'g'}{i + 1}}}" for i in range(n)]
    lines.append(f"  g{n}: {{hangup: true}}")
    return "\n".join(lines) + "\n"


def back_menus(n: int) -> str:
    """``n`` menus in a row, each with a ``back`` option, then a hangup."""
    lines = ["start: g0", "nodes:"]
    lines += [
        f"  g{i}: {{menu: {{prompt: hi, options: {{'1': g{i + 1}, '2': back}}, "
        "otherwise: hangup}}"
        for i in range(n)
    ]
    lines.append(f"  g{n}: {{hangup: true}}")
    return "\n".join(lines) + "\n"


def errors_of(text: str) -> list[str]:
    with pytest.raises(FlowErrors) as info:
        parse_flow(text, file="f.yaml", name="f")
    return [str(e) for e in info.value.errors]


def write(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime on (some file systems keep 1 s granularity)."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000_000))


# --- anchors and aliases ------------------------------------------------------------------


def test_a_billion_laughs_is_refused_at_its_first_anchor() -> None:
    assert errors_of(billion_laughs()) == [f"f.yaml:3:7: {REFUSED}"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "start: s\nnodes:\n  s: {play: &beep {sound: beep}, next: t}\n"
            "  t: {play: *beep, next: hangup}\n",
            "3:13: node 's'",
        ),
        (
            "start: s\nnodes:\n  s:\n    <<: {play: {sound: beep}}\n    next: t\n"
            "  t: {play: *nothing, next: hangup}\n",
            "6:13: node 't'",
        ),  # an alias, no anchor
    ],
    ids=["anchor", "alias"],
)
def test_an_anchor_or_alias_in_a_node_names_the_node(text: str, where: str) -> None:
    assert errors_of(text) == [f"f.yaml:{where}: {REFUSED}"]


def test_nesting_deeper_than_the_stack_is_a_flow_error() -> None:
    deep = "[" * 5000 + "]" * 5000
    deep = f"start: s\nvariables: {{a: {deep}}}\nnodes:\n  s: {{hangup: true}}\n"
    [error] = errors_of(deep)
    assert error.startswith("f.yaml:2:") and "nested too deeply" in error


def test_load_flow_and_the_library_refuse_aliases(tmp_path: Path) -> None:
    laughs = tmp_path / "laughs.yaml"
    laughs.write_text(billion_laughs(), encoding="utf-8")
    with pytest.raises(FlowErrors) as info:
        load_flow(laughs)
    assert str(info.value) == f"{laughs}:3:7: {REFUSED}"
    lib = load_library([tmp_path])
    assert lib.flows == {} and [str(e) for e in lib.errors] == [str(info.value)]


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (["validate"], 1),
        (["simulate", "--input", "hangup"], 2),
        (["graph", "--format", "dot"], 2),
    ],
    ids=["validate", "simulate", "graph"],
)
def test_commands_refuse_a_billion_laughs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], code: int
) -> None:
    laughs = tmp_path / "laughs.yaml"
    laughs.write_text(billion_laughs(), encoding="utf-8")
    assert main([command[0], str(laughs), *command[1:]]) == code
    first = capsys.readouterr().err.splitlines()[0]
    assert first.removeprefix("ivr: ") == f"{laughs}:3:7: {REFUSED}"


async def test_reload_keeps_the_old_version_and_frees_its_lock(tmp_path: Path) -> None:
    write(tmp_path / "main.yaml", 'version: "v1"\n' + SMALL)
    reg = FlowRegistry(tmp_path)
    await reg.reload()
    write(tmp_path / "main.yaml", billion_laughs())
    result = await asyncio.wait_for(reg.reload("file change"), 30)
    assert result.result == "partial" and result.kept == ["main"]
    assert [str(e) for e in result.errors] == [f"{tmp_path / 'main.yaml'}:3:7: {REFUSED}"]
    main_flow = reg.get("main")
    assert main_flow is not None and main_flow.version.startswith("v1+")
    write(tmp_path / "main.yaml", 'version: "v2"\n' + SMALL)  # the next reload gets the lock
    result = await asyncio.wait_for(reg.reload("file change"), 30)
    assert result.result == "ok" and result.changed == ["main"]


# --- linear checks ------------------------------------------------------------------------


def test_8000_goto_nodes_validate() -> None:
    flow = parse_flow(goto_chain(8000), file="f.yaml", name="f")
    assert len(flow.nodes) == 8001
    errs = errors_of(goto_chain(8000, dangling=True))
    # each goto dangles; the node behind it is unreachable because of it, so in its error
    assert len(errs) == 8000
    assert errs[0] == (
        "f.yaml:3:14: node 'g0': goes to 'x1', which is not a node of this flow"
        " (1 node is unreachable because of this: g1); did you mean 'g1'?"
    )


def test_did_you_mean_names_the_closest_nodes_then_those_that_start_alike() -> None:
    """Up to three: names one or two edits away (case aside) first, then the first ones in
    file order that share the first three letters; the index is built once per flow."""
    text = (
        "start: Menu_a\nnodes:\n  Menu_a: {goto: menu}\n  menu_b: {goto: MENU_c}\n"
        "  mEnU_c: {goto: Menu_a}\n  other: {goto: ot}\n  menu_d: {goto: zz}\n"
        "  m: {goto: M}\n"
    )
    with pytest.raises(FlowErrors) as info:
        parse_flow(text, file="f.yaml", name="f")
    hints = {
        e.node: e.message.partition("; ")[2] for e in info.value.errors if "goes to" in e.message
    }
    menus = "did you mean 'Menu_a' or 'menu_b' or 'mEnU_c'?"
    assert hints == {
        "Menu_a": menus,
        "menu_b": "did you mean 'mEnU_c' or 'Menu_a' or 'menu_b'?",  # MENU_c
        "other": "did you mean 'other'?",
        "menu_d": "",
        "m": "did you mean 'm' or 'Menu_a' or 'menu_b'?",  # M
    }


class _CountingNodes(dict[str, m.FlowNode]):
    """A node table that counts how often it is walked from end to end."""

    walks = 0

    def __iter__(self) -> Iterator[str]:
        self.walks += 1
        return super().__iter__()

    def values(self) -> Iterator[m.FlowNode]:  # type: ignore[override]
        self.walks += 1
        return iter(list(super().values()))


def _validate_walks(n: int, *, dangling: bool) -> int:
    """How often ``check_flow`` walks the node table of an ``n``-goto chain."""
    text = goto_chain(n)
    flow = parse_flow(text, file="f.yaml", name="f")
    nodes = _CountingNodes(
        {
            nid: dataclasses.replace(node, target=f"x{node.target}")
            if dangling and isinstance(node, m.GotoNode)
            else node
            for nid, node in flow.nodes.items()
        }
    )
    check_flow(dataclasses.replace(flow, nodes=nodes), load_source(text, "f.yaml"), None)
    return nodes.walks


def test_dangling_targets_do_not_walk_the_nodes_once_each() -> None:
    """The node table is walked a fixed number of times however many targets dangle (a
    did-you-mean scan per dangling target made 8,000 gotos take 20 s)."""
    assert _validate_walks(50, dangling=True) == _validate_walks(400, dangling=True)
    assert _validate_walks(400, dangling=True) <= _validate_walks(400, dangling=False) + 1


def _graph_walks(n: int) -> int:
    flow = parse_flow(back_menus(n), file="f.yaml", name="f")
    nodes = _CountingNodes(flow.nodes)
    flow_edges(dataclasses.replace(flow, nodes=nodes))
    return nodes.walks


def test_back_options_do_not_walk_the_nodes_once_each() -> None:
    """Drawing resolves every ``back`` option from one table of incoming arrows."""
    assert _graph_walks(20) == _graph_walks(200)
    edges = flow_edges(parse_flow(back_menus(3), file="f.yaml", name="f"))
    assert [(e.source, e.target) for e in edges if e.style == "back"] == [
        ("g0", "back"),
        ("g1", "g0"),
        ("g2", "g1"),
    ]
