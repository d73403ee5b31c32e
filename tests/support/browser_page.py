"""Headless Chromium (Debian's, driven by Playwright) for the dashboard's browser tests."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, Response, sync_playwright

from . import timeshift

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def chromium(*args: str) -> Iterator[Browser]:
    """The browser, with ``args`` on its command line too."""
    assert Path(CHROMIUM).exists(), "apt-get install chromium chromium-driver (make deps)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu", *args])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Dashboard:
    """One page of the dashboard, with every console error, page error and (optionally)
    failed request it met; ``allowed`` patterns are errors a test provokes on purpose."""

    page: Page
    url: str
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def open(self) -> Page:
        self.page.goto(self.url)
        return self.page

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@contextmanager
def dashboard(
    browser: Browser, url: str, *, timezone_id: str | None = None, http_errors: bool = False
) -> Iterator[Dashboard]:
    """A laptop-sized page on ``url`` that collects errors (HTTP >= 400 too if asked)."""
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="en-GB", timezone_id=timezone_id
    )
    if os.environ.get(timeshift.SHIFT_ENV):  # the page reads the session's shifted clock
        context.clock.install(time=time.time())
    page = context.new_page()
    d = Dashboard(page, url)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            d.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            d.errors.append(f"HTTP {response.status}: {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: d.errors.append(f"pageerror: {exc}"))
    if http_errors:
        page.on("response", on_response)
    try:
        yield d
    finally:
        context.close()
