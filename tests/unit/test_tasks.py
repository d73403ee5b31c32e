"""The background task helper: start once, close cancels and waits, errors propagate."""

from __future__ import annotations

import asyncio

import pytest

from ivr.tasks import Background


async def test_close_cancels_and_waits_for_the_task() -> None:
    stopped = asyncio.Event()

    async def loop() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.set()

    task = Background("loop")
    task.start(loop())
    await asyncio.sleep(0)
    assert task.running
    await task.close()
    assert stopped.is_set() and not task.running
    await task.close()  # again: nothing to do


async def test_a_second_start_while_running_is_refused() -> None:
    task = Background("once")
    task.start(asyncio.sleep(3600))
    second = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="once is already running"):
        task.start(second)
    await task.close()


async def test_an_error_of_the_task_is_not_swallowed_on_close() -> None:
    async def broken() -> None:
        raise ValueError("bad row")

    task = Background("broken")
    task.start(broken())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="bad row"):
        await task.close()
