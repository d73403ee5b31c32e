"""A fixed number of worker threads for blocking admin work that a flood of requests cannot
grow: a job either gets a free slot at once or is refused, and a slot is freed when its thread
ends, not when the request stops waiting (a job that outlives its timeout keeps its slot)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger("ivr.admin")

T = TypeVar("T")


class ThreadSlots:
    """At most ``size`` jobs at once, each in a thread of its own pool (never the loop's
    default executor, which flow reloads and store reads share)."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._free = size
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)

    @property
    def busy(self) -> int:
        """Jobs whose thread has not ended yet."""
        return self.size - self._free

    def start(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T] | None:
        """Run ``fn(*args)`` in a free thread; ``None`` when every slot is taken. Await the job
        through :func:`asyncio.shield`: cancelling it would free the slot while it runs."""
        if self._free == 0:
            return None
        self._free -= 1
        job = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        job.add_done_callback(self._done)
        return job

    def _done(self, job: asyncio.Future[Any]) -> None:
        self._free += 1
        # read here so that a job nobody awaits any more (timed out) still has its error logged
        error = None if job.cancelled() else job.exception()
        if error is not None:
            log.error("%s job failed", self.name, exc_info=error)

    def close(self) -> None:
        """Start no more threads; running ones end on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)
