"""A background task a component owns: started once, cancelled and awaited on close.

The app's periodic jobs (heartbeat, backlog metrics, recording retention, the webhook sender)
each run one loop beside the calls; :class:`Background` is their start/close, written once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

__all__ = ["Background"]


class Background:
    """One named task: :meth:`start` runs a coroutine, :meth:`close` cancels it and waits
    until it has stopped (its ``CancelledError`` is absorbed; any other error propagates)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the task was started and has not stopped."""
        return self._task is not None and not self._task.done()

    def start(self, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` as this task (once: a second start while running is a bug)."""
        if self.running:
            job.close()
            raise RuntimeError(f"{self.name} is already running")
        self._task = asyncio.create_task(job, name=self.name)

    async def close(self) -> None:
        """Stop the task, if any; safe to call more than once."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
