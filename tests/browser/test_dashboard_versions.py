"""The dashboard's Versions panel in headless Chromium against the REAL server, on flows in a
temporary directory (a rollback writes the flow's file): the versions of a flow newest first
with who, why and the serving one marked; a diff of one version against the one before; Roll
back asks first (dismissed: nothing happens), is refused with the errors while the old text
no longer loads (its sub-flow is gone), and once it loads again publishes it as a new version.
Run alone with ``pytest -m browser tests/browser/test_dashboard_versions.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, expect
from support.browser_page import Dashboard, dashboard
from support.live_server import LiveServer, console_settings, live_server

from ivr.config import AdminSettings, Secret

pytestmark = pytest.mark.browser

TOKEN = "dashboard-versions-token-42"
HELPER = "start: s\nnodes:\n  s: {play: {sound: beep}, next: return}\n"


def flow_text(label: str, *, call: str | None = None) -> str:
    after = "sub_call" if call else "bye"
    sub = f"  sub_call: {{call: {call}, next: bye}}\n" if call else ""
    return (
        f'version: "{label}"\nstart: hello\nnodes:\n'
        f"  hello: {{play: {{sound: hello-world}}, next: {after}}}\n{sub}"
        "  bye: {hangup: true}\n"
    )


def write(path: Path, text: str) -> None:
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000_000))


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("dashboard-versions") / "flows"
    d.mkdir()
    write(d / "main.yaml", flow_text("v1", call="helper"))
    write(d / "helper.yaml", HELPER)
    return d


@pytest.fixture(scope="module")
def server(flows: Path) -> Iterator[LiveServer]:
    tmp = flows.parent
    admin = AdminSettings(port=0, open_read=True, token=Secret(TOKEN.encode()))
    settings = console_settings(tmp, admin, flows, flows_poll_s=0)  # reloads when a test asks
    with live_server(settings) as srv:
        yield srv


@pytest.fixture
def dash(browser: Browser, server: LiveServer) -> Iterator[Dashboard]:
    with dashboard(browser, server.url + "/", timezone_id="UTC") as d:
        yield d


def reload(server: LiveServer, reason: str, by: str = "") -> None:
    server.run(server.running.flows.reload(reason, by))


def serving(server: LiveServer) -> str:
    return server.running.flows.flows["main"].version


def test_versions_panel_diffs_and_rolls_back(
    dash: Dashboard, server: LiveServer, flows: Path
) -> None:
    v1 = serving(server)
    write(flows / "main.yaml", flow_text("v2"))  # the sub-flow call is gone
    reload(server, "new greeting", "carol")
    v2 = serving(server)
    page = dash.open()
    expect(page.locator('nav a[href="#versions"]')).to_have_text("Versions")
    page.select_option("#versions-flow", "main")
    rows = page.locator("#versions-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#versions-current")).to_have_text(f"serving {v2}")
    newest = rows.nth(0)
    expect(newest).to_contain_text(v2)
    expect(newest).to_contain_text("serving")
    expect(newest).to_contain_text("carol")
    expect(newest).to_contain_text("new greeting")
    expect(newest.locator("[data-rollback]")).to_be_disabled()  # it is serving
    expect(rows.nth(1)).to_contain_text("start")
    expect(rows.nth(1).locator("[data-diff]")).to_be_disabled()  # nothing before it

    newest.locator("[data-diff]").click()
    diff = page.locator("#versions-diff")
    expect(page.locator("#versions-diff-view")).to_be_visible()
    expect(diff.locator(".diff-del", has_text='version: "v1"')).to_have_count(1)
    expect(diff.locator(".diff-add", has_text='version: "v2"')).to_have_count(1)
    expect(diff.locator(".diff-del", has_text="sub_call: {call: helper")).to_have_count(1)

    # asked first: dismissed, nothing is sent
    dialogs: list[str] = []

    def answer(accept: bool) -> None:
        def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        page.once("dialog", on_dialog)

    answer(False)
    rows.nth(1).locator("[data-rollback]").click()
    expect(page.locator("#versions-status")).to_have_text("")
    assert dialogs and v1 in dialogs[0]
    assert serving(server) == v2

    # v1 calls helper; with helper gone it no longer loads: refused with the error
    (flows / "helper.yaml").unlink()
    reload(server, "file change")
    answer(True)
    rows.nth(1).locator("[data-rollback]").click()
    expect(page.locator("#auth-token")).to_be_visible()  # a rollback needs the token
    page.fill("#auth-token", TOKEN)
    page.press("#auth-token", "Enter")
    status = page.locator("#versions-status")
    expect(status).to_contain_text("no longer loads")
    expect(status).to_have_class(re.compile("bad"))
    expect(page.locator("#versions-errors li")).to_contain_text("calls flow 'helper'")
    assert serving(server) == v2
    assert (flows / "main.yaml").read_text() == flow_text("v2")
    expect(rows).to_have_count(2)

    # helper back: the rollback is published again, a new version on top
    write(flows / "helper.yaml", HELPER)
    reload(server, "file change")
    answer(True)
    rows.nth(1).locator("[data-rollback]").click()
    expect(status).to_have_text(f"main now serves {v1}.")
    expect(page.locator("#versions-errors li")).to_have_count(0)
    expect(rows).to_have_count(3)
    top = rows.nth(0)
    expect(top).to_contain_text(f"rollback to {v1}")
    expect(top).to_contain_text("dashboard (127.0.0.1)")
    expect(top).to_contain_text("serving")
    expect(page.locator("#versions-current")).to_have_text(f"serving {v1}")
    assert serving(server) == v1
    assert (flows / "main.yaml").read_text() == flow_text("v1", call="helper")
    errors = [e for e in dash.unexpected_errors() if not re.search(r"401|422", e)]
    assert errors == [], "errors on the dashboard"
