"""Published flow versions through the real server (:class:`ivr.app.server.App`): kept in the
store at start-up (once: a restart adds none) and at each reload with who asked and why;
listed with the calls that ran each; diffed; rolled back through the same checked reload as
an edit, refused with the errors when the old text no longer loads (its sub-flow is gone);
and the same from ``ivr flows history|diff|rollback`` against the running server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from support.fake_asterisk import run_fake_call

from ivr.app.server import App, Server
from ivr.cli import main
from ivr.config import AdminSettings, AgiSettings, Secret, Settings, SpeechSettings, StoreSettings

TOKEN = "versions-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def flow_text(label: str, *, call: str | None = None) -> str:
    """A flow on stock sounds: hello, (a sub-flow call,) bye."""
    after = "sub_call" if call else "bye"
    sub = f"  sub_call: {{call: {call}, next: bye}}\n" if call else ""
    return (
        f'version: "{label}"\nstart: hello\nnodes:\n'
        f"  hello: {{play: {{sound: hello-world}}, next: {after}}}\n{sub}"
        "  bye: {hangup: true}\n"
    )


HELPER = "start: s\nnodes:\n  s: {play: {sound: beep}, next: return}\n"


def write(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime on (some file systems keep 1 s granularity)."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000_000))


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    d = tmp_path / "flows"
    d.mkdir()
    write(d / "main.yaml", flow_text("v1", call="helper"))
    write(d / "helper.yaml", HELPER)
    return d


def settings(tmp_path: Path, flows: Path) -> Settings:
    return Settings(
        flows_dir=str(flows),
        flows_poll_s=0,  # reloads only when asked: who and why are the test's
        prompts_dir=str(tmp_path / "prompts"),
        agi=AgiSettings(port=0),
        store=StoreSettings(path=str(tmp_path / "calls.sqlite3")),
        speech=SpeechSettings(port=0),
        admin=AdminSettings(port=0, token=Secret(TOKEN.encode())),
    )


@pytest.fixture
async def app(tmp_path: Path, flows_dir: Path) -> AsyncIterator[Server]:
    server = await App(settings(tmp_path, flows_dir)).start()
    yield server
    await server.close()


@pytest.fixture
async def admin(app: Server) -> AsyncIterator[ClientSession]:
    async with ClientSession(f"http://127.0.0.1:{app.admin.port}") as session:
        yield session


async def versions(admin: ClientSession, name: str = "main") -> dict[str, Any]:
    response = await admin.get(f"/api/flows/{name}/versions", headers=AUTH)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def finished_calls(app: Server, call_id: str) -> None:
    for _ in range(200):
        record = await app.store.get(call_id)
        if record is not None and record.outcome is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{call_id} never finished")


async def test_versions_are_kept_diffed_and_rolled_back(
    app: Server, admin: ClientSession, flows_dir: Path, tmp_path: Path
) -> None:
    v1 = app.flows.flows["main"].version
    start = await versions(admin)
    assert start["current"] == v1 and start["timezone"] == "UTC"
    [row] = start["versions"]
    assert (row["version"], row["reason"], row["published_by"], row["calls"]) == (
        v1, "start", "", 0,
    )  # fmt: skip
    assert row["current"] and row["node"] == app.store.node

    # a restart on the same files adds no row
    await app.close()
    app2 = await App(settings(tmp_path, flows_dir)).start()
    try:
        async with ClientSession(f"http://127.0.0.1:{app2.admin.port}") as admin2:
            assert [v["id"] for v in (await versions(admin2))["versions"]] == [row["id"]]
            await edit_diff_and_roll_back(app2, admin2, flows_dir, v1)
    finally:
        await app2.close()


async def edit_diff_and_roll_back(
    app: Server, admin: ClientSession, flows_dir: Path, v1: str
) -> None:
    write(flows_dir / "main.yaml", flow_text("v2"))  # no sub-flow any more
    reload = await admin.post(
        "/api/flows/reload", headers=AUTH, json={"by": "alice", "reason": "new greeting"}
    )
    assert (await reload.json())["changed"] == ["main"]
    v2 = app.flows.flows["main"].version
    await run_fake_call("127.0.0.1", app.agi.port, script="main", uniqueid="on-v2")
    await finished_calls(app, "on-v2")
    for version, expected in ((v2, ["on-v2"]), (v1, [])):
        response = await admin.get("/api/calls", params={"version": version}, headers=AUTH)
        assert [c["call_id"] for c in (await response.json())["recent"]] == expected
    listed = (await versions(admin))["versions"]
    assert [(v["version"], v["reason"], v["calls"], v["current"]) for v in listed] == [
        (v2, "new greeting", 1, True),
        (v1, "start", 0, False),
    ]
    assert listed[0]["published_by"] == "alice (127.0.0.1)"

    one = await (
        await admin.get(f"/api/flows/main/versions/{listed[1]['id']}", headers=AUTH)
    ).json()
    assert one["content"] == flow_text("v1", call="helper") and one["version"] == v1
    by_hash = await admin.get(f"/api/flows/main/versions/{v1.split('+')[1][:6]}", headers=AUTH)
    assert (await by_hash.json())["id"] == listed[1]["id"]
    missing = await admin.get("/api/flows/main/versions/nothing-like-it", headers=AUTH)
    assert missing.status == 404

    diff = await (await admin.get("/api/flows/main/diff", headers=AUTH)).json()
    assert diff["from"]["version"] == v1 and diff["to"]["version"] == v2
    assert '-version: "v1"\n' in diff["diff"] and '+version: "v2"\n' in diff["diff"]
    assert "-  sub_call: {call: helper, next: bye}\n" in diff["diff"]

    # rollback needs the write token
    refused = await admin.post("/api/flows/main/rollback", json={"version": v1})
    assert refused.status == 401
    # v1 calls helper: with helper gone it no longer loads, so it is refused and nothing moves
    (flows_dir / "helper.yaml").unlink()
    await admin.post("/api/flows/reload", headers=AUTH)
    response = await admin.post("/api/flows/main/rollback", headers=AUTH, json={"version": v1})
    assert response.status == 422
    body = await response.json()
    assert "no longer loads" in body["error"]
    assert any("calls flow 'helper'" in e["message"] for e in body["errors"]), body
    assert (flows_dir / "main.yaml").read_text() == flow_text("v2")
    assert app.flows.flows["main"].version == v2
    assert len((await versions(admin))["versions"]) == 2

    # with helper back, the rollback goes through the reload and is a new row
    write(flows_dir / "helper.yaml", HELPER)
    await admin.post("/api/flows/reload", headers=AUTH)
    response = await admin.post(
        "/api/flows/main/rollback", headers=AUTH, json={"version": v1, "by": "bob"}
    )
    assert response.status == 200, await response.text()
    done = await response.json()
    assert done["rolled_back_to"] == v1
    assert done["published"]["reason"] == f"rollback to {v1}"
    assert done["published"]["published_by"] == "bob (127.0.0.1)"
    assert app.flows.flows["main"].version == v1
    assert (flows_dir / "main.yaml").read_text() == flow_text("v1", call="helper")
    assert [(v["version"], v["current"]) for v in (await versions(admin))["versions"]] == [
        (v1, True), (v2, False), (v1, False),
    ]  # fmt: skip
    again = await admin.post("/api/flows/main/rollback", headers=AUTH, json={"version": v1})
    assert again.status == 409


async def test_the_cli_shows_history_and_diff_and_rolls_back(
    app: Server,
    flows_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IVR_ADMIN_TOKEN", TOKEN)
    url = f"http://127.0.0.1:{app.admin.port}"
    v1 = app.flows.flows["main"].version
    write(flows_dir / "main.yaml", flow_text("v2", call="helper"))
    await app.flows.reload("file change")
    v2 = app.flows.flows["main"].version

    async def ivr(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, [*argv, "--url", url])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await ivr("flows", "history", "main", "--tz", "Asia/Shanghai")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"flow main: serving {v2}; times in Asia/Shanghai"
    assert lines[1].split() == ["id", "version", "published", "by", "reason", "calls"]
    assert v2 in lines[2] and lines[2].lstrip().startswith("*") and "file change" in lines[2]
    assert v1 in lines[3] and "start" in lines[3]

    code, out, _ = await ivr("flows", "diff", "main")
    assert code == 0 and '-version: "v1"' in out and '+version: "v2"' in out

    code, out, _ = await ivr("flows", "rollback", "main", v1.split("+")[1][:8], "--reason", "oops")
    assert code == 0, out
    assert out.startswith(f"flow main now serves {v1} (version #")
    assert out.strip().endswith(f": rollback to {v1}: oops)")
    assert app.flows.flows["main"].version == v1
    code, out, _ = await ivr("flows", "history", "main")
    assert "@" in out.splitlines()[2]  # by user@host

    code, _, err = await ivr("flows", "rollback", "main", "no-such")
    assert code == 1 and "no stored version 'no-such'" in err
    monkeypatch.delenv("IVR_ADMIN_TOKEN")
    code, _, err = await ivr("flows", "rollback", "main", v2)
    assert code == 1 and "IVR_ADMIN_TOKEN" in err
    code = await asyncio.to_thread(
        main, ["flows", "history", "main", "--url", "http://127.0.0.1:9"]
    )
    assert code == 2 and "cannot reach the admin API" in capsys.readouterr().err
