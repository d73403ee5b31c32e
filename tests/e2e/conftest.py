"""End-to-end fixtures: a real Asterisk 22 in a chroot (ivr.lab), once per test session.

The first run on a machine builds the tree with debootstrap (about a minute, needs root and
the Debian mirror); later runs unpack or reuse it in about a second. A lab that was already up
before the session is reused and left running.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr.lab import Lab


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    the_lab = Lab()
    was_running = the_lab.status().running
    the_lab.up()  # raises LabError with the reason (not root, mirror, busy ports)
    try:
        yield the_lab
    finally:
        if not was_running:
            the_lab.down()
