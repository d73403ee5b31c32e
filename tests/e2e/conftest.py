"""End-to-end fixtures: a real Asterisk 22 in a chroot (ivr.lab), once per test session.

The first run on a machine builds the tree with debootstrap (about a minute, needs root and
the Debian mirror); later runs unpack or reuse it in about a second. A lab that was already up
before the session is reused and left running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from helpers import Records, wait_until_idle
from serve import ROOT, BalanceStub, IvrServe
from support.instants import next_open_monday

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


# --------------------------------------------------------------------------- ivr serve
# The real server for tests/e2e/test_calls.py. Module scope, not session: test_lab.py needs
# port 4573 free (its own inline handler, and "server down").

# The bank flow is open Monday-Friday 08:00-20:00 in Shanghai: pin the flow clock to the next
# Monday morning it is open, built from now, so the tests do not depend on when they run and
# `ivr campaign start` (real time) books jobs the server sees as due (see serve.py).
BANK_OPEN_AT = next_open_monday(ROOT / "flows" / "bank.yaml", 10)


@pytest.fixture(scope="module")
def balance_stub() -> Iterator[BalanceStub]:
    stub = BalanceStub()
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture(scope="module")
def ivr_server(
    lab: Lab, balance_stub: BalanceStub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IvrServe]:
    """``ivr serve`` on 127.0.0.1:4573 (the port the dialplan dials), log in artifacts/e2e/."""
    server = IvrServe(
        tmp_path_factory.mktemp("ivr-serve"),
        http_base_url=balance_stub.base_url,
        clock_at=BANK_OPEN_AT,
        ami_secret=lab.ami_secret,
        # what each speech menu's recogniser was fed, under <workdir>/recordings/utterances
        settings={"speech": {"keep_utterances": True}},
    )
    yield from server.serving()


@pytest.fixture
async def records(ivr_server: IvrServe) -> Records:
    rec = Records(ivr_server)
    await rec.snapshot()
    return rec


@pytest.fixture
async def no_leftover_calls(lab: Lab, ivr_server: IvrServe) -> AsyncIterator[None]:
    """Each test leaves Asterisk idle; a failed one must not leak calls into the next."""
    yield
    channels, _ = await wait_until_idle(lab, timeout_s=5)
    if not channels.startswith("0 active channels"):
        lab.cli("channel request hangup all")
        await wait_until_idle(lab, timeout_s=5)
    assert ivr_server.running, f"ivr serve died; log: {ivr_server.log_path}"
