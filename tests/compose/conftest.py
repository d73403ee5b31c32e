"""The compose stack run for real (podman + podman-compose), marker `compose`.

Part of `make test` where it can run: as root with podman and debootstrap installed (.ci/run
installs them; cold, the images take about 3 minutes to build, warm well under one).
Elsewhere the tests are skipped with the reason. Under the time-bomb guard
(IVR_TEST_CLOCK_SHIFT_DAYS, `make test-future`) they are skipped too: the containers keep the
real clock, so a second run there would prove nothing the first did not.
"""

from __future__ import annotations

import os
import shutil

import pytest


def _why_not() -> str | None:
    if os.environ.get("IVR_TEST_CLOCK_SHIFT_DAYS") or os.environ.get("IVR_TEST_CLOCK_SHIFT_S"):
        return "the containers keep the real clock: nothing to check under the time shift"
    if os.geteuid() != 0:
        return "needs root (debootstrap, rootful podman)"
    missing = [tool for tool in ("podman", "debootstrap") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed: apt-get install -y podman debootstrap"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _why_not()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("compose"):
            item.add_marker(pytest.mark.skip(reason=f"compose stack: {reason}"))
