"""The compose stack run for real (podman + podman-compose): out of the default run.

Building the images cold takes minutes (debootstrap, apt and pip inside `podman build`), so
these tests run only when asked for: `pytest -m compose`. Every other run reports them as
skipped with that hint.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "compose" in (config.getoption("markexpr", "") or ""):
        return  # `-m compose` runs them; `-m "not compose"` has them deselected anyway
    skip = pytest.mark.skip(reason="builds and runs the compose stack (minutes cold): -m compose")
    for item in items:
        if item.get_closest_marker("compose"):
            item.add_marker(skip)
