"""FlowRegistry: safe hot reload of a flows directory (broken files keep their previous
version, removed flows stop taking new calls, history, the mtime watcher, serialized reloads)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from ivr.flow.model import Flow
from ivr.flow.registry import FlowRegistry, ReloadResult


def flow_text(label: str, end: str = "bye", *, call: str | None = None) -> str:
    """A small flow on stock sounds (nothing to render), labelled ``version: label``."""
    after = "sub_call" if call else end
    sub = f"  sub_call: {{call: {call}, next: {end}}}\n" if call else ""
    return (
        f'version: "{label}"\nstart: hello\nnodes:\n'
        f"  hello: {{play: {{sound: hello-world}}, next: {after}}}\n{sub}"
        f"  {end}: {{hangup: true}}\n"
    )


SUB = "start: s\nnodes:\n  s: {play: {sound: beep}, next: return}\n"
BROKEN = 'version: "bad"\nstart: hello\nnodes:\n  hello: {play: {sound: x}, next: nowhere}\n'


def write(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime on (some file systems keep 1 s granularity)."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000_000))


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    d = tmp_path / "flows"
    d.mkdir()
    write(d / "main.yaml", flow_text("v1"))
    write(d / "sub.yaml", SUB)
    return d


async def test_initial_load_and_history(flows: Path) -> None:
    times = iter(range(1000, 2000))
    reg = FlowRegistry(flows, clock=lambda: float(next(times)))
    result = await reg.reload()
    assert result.result == "ok" and result.initial
    assert sorted(result.added) == ["main", "sub"]
    main = reg.get("main")
    assert main is not None and main.version.startswith("v1+")
    current = reg.current("main")
    assert current is not None and current.loaded_at == 1000.0
    assert current.source == (flows / "main.yaml").read_text()
    write(flows / "main.yaml", flow_text("v2"))
    result = await reg.reload()
    assert result.changed == ["main"] and not result.initial
    assert [v.version.split("+")[0] for v in reg.versions("main")] == ["v1", "v2"]
    again = await reg.reload()  # nothing changed: no new version
    assert again.result == "ok" and not again.changed and len(reg.versions("main")) == 2


async def test_a_broken_file_keeps_its_previous_version_and_reports_file_line(
    flows: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reg = FlowRegistry(flows)
    await reg.reload()
    before = reg.get("main")
    write(flows / "main.yaml", BROKEN)
    write(flows / "other.yaml", flow_text("o1"))
    result = await reg.reload()
    assert result.result == "partial"
    assert result.kept == ["main"] and result.added == ["other"]
    assert reg.get("main") is before  # the very same Flow object keeps serving
    assert reg.get("other") is not None
    [error] = result.errors
    assert error.file == str(flows / "main.yaml") and error.line == 4 and error.node == "hello"
    assert "nowhere" in error.message
    assert reg.errors == result.errors
    assert f"{flows / 'main.yaml'}:4:" in caplog.text
    assert "keeps serving" in caplog.text
    write(flows / "main.yaml", flow_text("v3"))  # fixed: the new version serves
    result = await reg.reload()
    assert result.result == "ok" and result.changed == ["main"] and not reg.errors
    main = reg.get("main")
    assert main is not None and main.version.startswith("v3+")


async def test_a_broken_file_never_loaded_stays_out(flows: Path) -> None:
    write(flows / "new.yaml", BROKEN)
    reg = FlowRegistry(flows)
    result = await reg.reload()
    assert result.result == "partial" and reg.get("new") is None
    assert result.errors[0].file.endswith("new.yaml")


async def test_a_kept_sub_flow_still_satisfies_its_callers(flows: Path) -> None:
    write(flows / "main.yaml", flow_text("v1", call="sub"))
    reg = FlowRegistry(flows)
    assert (await reg.reload()).result == "ok"
    write(flows / "sub.yaml", "start: s\nnodes:\n  s: {play: {sound: beep}, next: nope}\n")
    result = await reg.reload()
    assert result.kept == ["sub"]
    assert all("calls flow" not in e.message for e in result.errors)  # sub is still there
    assert [e.file for e in result.errors] == [str(flows / "sub.yaml")]


async def test_removed_flows_stop_taking_new_calls(flows: Path) -> None:
    reg = FlowRegistry(flows)
    await reg.reload()
    held = reg.flows  # what a call in progress holds (services.flows)
    (flows / "sub.yaml").unlink()
    result = await reg.reload()
    assert result.removed == ["sub"] and reg.get("sub") is None
    assert "sub" in held  # the old mapping is never changed in place
    assert reg.versions("sub")  # the history stays readable


async def test_a_missing_directory_changes_nothing(flows: Path) -> None:
    reg = FlowRegistry(flows)
    await reg.reload()
    shutil.rmtree(flows)
    result = await reg.reload()
    assert result.result == "error" and "missing" in result.message
    assert sorted(reg.flows) == ["main", "sub"]


async def test_history_keeps_the_last_versions(flows: Path) -> None:
    reg = FlowRegistry(flows, keep=5)
    await reg.reload()
    for i in range(2, 10):
        write(flows / "main.yaml", flow_text(f"v{i}"))
        await reg.reload()
    labels = [v.version.split("+")[0] for v in reg.versions("main")]
    assert labels == ["v5", "v6", "v7", "v8", "v9"]


async def test_concurrent_reloads_are_serialized(flows: Path) -> None:
    running = 0
    most = 0

    async def prepare(fresh: list[Flow]) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1

    reg = FlowRegistry(flows, prepare=prepare)
    await reg.reload()
    results: list[ReloadResult] = []
    for i in range(5):
        write(flows / "main.yaml", flow_text(f"c{i}"))
        results += await asyncio.gather(*(reg.reload() for _ in range(3)))
    assert most == 1
    assert all(r.result == "ok" for r in results)


async def test_prepare_failure_keeps_the_old_flows(flows: Path) -> None:
    calls: list[list[str]] = []

    async def prepare(fresh: list[Flow]) -> None:
        calls.append(sorted(f.name for f in fresh))
        if len(calls) > 1:
            raise RuntimeError("tts broke")

    reg = FlowRegistry(flows, prepare=prepare)
    await reg.reload()
    before = reg.get("main")
    write(flows / "main.yaml", flow_text("v2"))
    result = await reg.reload()
    assert result.result == "error" and "tts broke" in result.message
    assert reg.get("main") is before
    assert calls == [["main", "sub"], ["main"]]


async def test_the_watcher_reloads_after_a_change_settles(flows: Path) -> None:
    seen: list[ReloadResult] = []
    reg = FlowRegistry(flows, poll_s=0.02, on_reload=seen.append)
    await reg.reload()
    reg.start_watching()
    try:
        write(flows / "main.yaml", flow_text("w2"))
        for _ in range(250):
            main = reg.get("main")
            if main is not None and main.version.startswith("w2+"):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the watcher did not reload")
        assert seen[-1].reason == "file change" and seen[-1].changed == ["main"]
        count = len(seen)
        await asyncio.sleep(0.2)  # nothing changed since: no more reloads
        assert len(seen) == count
    finally:
        await reg.close()
