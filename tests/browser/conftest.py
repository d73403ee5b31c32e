"""The browser tests' shared fixture: one headless Chromium per test module (a module that needs
other flags defines its own ``browser``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser
from support.browser_page import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # `make deps` installs Debian's chromium; a missing browser is a failure, never a skip
    with chromium() as b:
        yield b
