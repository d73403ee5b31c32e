import sys
from datetime import datetime
from pathlib import Path

import pytest

# tests import small shared helpers (flowkit, fake_asterisk) as top-level modules
sys.path.insert(0, str(Path(__file__).parent))

import timeshift

_SHIFT_S = 0.0


def pytest_configure(config: pytest.Config) -> None:
    global _SHIFT_S
    _SHIFT_S = timeshift.start_from_env()


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _SHIFT_S:
        return None
    return (f"clock shifted {_SHIFT_S / 86400:.2f} days ahead: now reads "
            f"{datetime.now().astimezone().isoformat(timespec='seconds')} "
            f"({timeshift.DAYS_ENV})")
