"""Flow files cannot exhaust the server: anchors and aliases are refused on every path that
loads a flow (no "billion laughs"), and nesting deeper than the stack is a flow error.
(``/api/validate`` is in ``test_admin_api.py``.)"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.errors import FlowErrors
from ivr.flow.library import load_library
from ivr.flow.loader import load_flow, parse_flow
from ivr.flow.registry import FlowRegistry

REFUSED = "anchors and aliases are not allowed in flows; write the value out"
SMALL = 'start: hello\nnodes:\n  hello: {play: {sound: hello-world}, next: hangup}\n'


def billion_laughs(levels: int = 9) -> str:
    """A ~380-byte flow whose ``variables:`` expand, alias by alias, to 9**levels values (387
    million at 9 levels). Its first anchor is at line 3, column 7."""
    lines = ["  a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "start: s\nvariables:\n" + "\n".join(lines) + "\nnodes:\n  s: {hangup: true}\n"


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


@pytest.mark.parametrize(("text", "where"), [
    ("start: s\nnodes:\n  s: {play: &beep {sound: beep}, next: t}\n"
     "  t: {play: *beep, next: hangup}\n", "3:13: node 's'"),
    ("start: s\nnodes:\n  s:\n    <<: {play: {sound: beep}}\n    next: t\n"
     "  t: {play: *nothing, next: hangup}\n", "6:13: node 't'"),  # an alias, no anchor
], ids=["anchor", "alias"])
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


@pytest.mark.parametrize(("command", "code"), [
    (["validate"], 1), (["simulate", "--input", "hangup"], 2), (["graph", "--format", "dot"], 2),
], ids=["validate", "simulate", "graph"])
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
