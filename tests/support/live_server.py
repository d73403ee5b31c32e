"""The real server (:class:`ivr.app.server.App`) for the browser tests, in a thread with its own
event loop: its store seeded first if asked, no prompts rendered (the page plays nothing),
closed at the end. A failed start-up is raised in the test, not lost in the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ivr.app.server import App
from ivr.app.server import Server as Running
from ivr.config import AdminSettings, AgiSettings, Settings, SpeechSettings, StoreSettings

T = TypeVar("T")

FLOWS = Path(__file__).resolve().parents[2] / "flows"


def console_settings(tmp: Path, admin: AdminSettings, flows: Path = FLOWS, **more: Any) -> Settings:
    """A server for a dashboard test: ``flows`` (the repository's by default), its store in
    ``tmp`` (``calls.sqlite3``), FastAGI and AudioSocket on free ports, ``admin`` as given."""
    return Settings(
        flows_dir=str(flows),
        prompts_dir=str(tmp / "prompts"),
        agi=AgiSettings(port=0),
        speech=SpeechSettings(port=0),
        store=StoreSettings(path=str(tmp / "calls.sqlite3")),
        admin=admin,
        **more,
    )


@dataclass
class LiveServer:
    """The running server; its admin API (and the dashboard) at :attr:`url`."""

    running: Running
    loop: asyncio.AbstractEventLoop
    host: str

    @property
    def port(self) -> int:
        return self.running.admin.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def run(self, job: Coroutine[Any, Any, T], timeout_s: float = 15) -> T:
        """Run ``job`` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(job, self.loop).result(timeout_s)


async def _no_rendering(self: App, flows: object) -> None:
    return None


@contextmanager
def live_server(
    settings: Settings,
    seed: Callable[[], Awaitable[None]] | None = None,
    host: str = "127.0.0.1",
) -> Iterator[LiveServer]:
    """``App(settings)`` started (after ``seed()``, on the same loop) until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    started: list[Running] = []
    failed: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            if seed is not None:
                loop.run_until_complete(seed())
            started.append(loop.run_until_complete(App(settings).start()))
        except BaseException as exc:  # reported by the caller, not lost in the thread
            failed.append(exc)
            return
        finally:
            ready.set()
        loop.run_forever()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(App, "render_prompts", _no_rendering)
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        assert ready.wait(30), "the server did not start"
        if failed:
            raise failed[0]
        server = LiveServer(started[0], loop, host)
        try:
            yield server
        finally:
            server.run(server.running.close())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
