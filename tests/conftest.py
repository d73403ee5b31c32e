import sys
from datetime import datetime
from pathlib import Path

import pytest

# The layout: unit/ (in-process, no sockets, processes or real engines; `make check`),
# integration/ (sockets, subprocesses, SQLite files, real speech engines, the fake Asterisk
# over TCP), browser/ (the dashboard in Chromium), e2e/ (a real Asterisk; the `asterisk`
# marker). Shared helpers live in support/ and are imported as `support.<module>`.
TESTS = Path(__file__).resolve().parent
FOLDERS = ("unit", "integration", "browser", "e2e")
sys.path.insert(0, str(TESTS))

from support import timeshift  # noqa: E402  (needs the sys.path above)

_SHIFT_S = 0.0


def pytest_configure(config: pytest.Config) -> None:
    global _SHIFT_S
    _SHIFT_S = timeshift.start_from_env()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test carries its folder as a marker: `-m unit`, `-m "not browser"`."""
    for item in items:
        parts = item.path.relative_to(TESTS).parts
        if len(parts) > 1 and parts[0] in FOLDERS:
            item.add_marker(parts[0])


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _SHIFT_S:
        return None
    return (
        f"clock shifted {_SHIFT_S / 86400:.2f} days ahead: now reads "
        f"{datetime.now().astimezone().isoformat(timespec='seconds')} "
        f"({timeshift.DAYS_ENV})"
    )
