"""A webhook receiver on loopback for tests: it verifies every POST with the stock
``standardwebhooks`` package (as a customer's receiver would) and keeps what it took."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Receiver:
    """``mode``: "ok" (2xx), "hang" (never answers), or an HTTP status to answer."""

    port: int = field(default_factory=free_port)
    mode: str | int = "ok"
    secret: str = SECRET
    taken: list[dict[str, Any]] = field(default_factory=list)  # verified bodies, in order
    ids: list[str] = field(default_factory=list)  # webhook-id of each taken body
    refused: int = 0  # bad signatures
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)  # ends the hanging posts

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._take)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _take(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            data = Webhook(self.secret).verify(raw, dict(request.headers))
        except WebhookVerificationError:
            self.refused += 1
            return web.Response(status=401)
        if self.mode == "hang":
            await self._release.wait()
            return web.Response(status=503)
        if isinstance(self.mode, int):
            return web.Response(status=self.mode)
        assert json.loads(raw) == data
        self.taken.append(data)
        self.ids.append(request.headers["webhook-id"])
        return web.Response(status=204)

    def of(self, call_id: str) -> list[str]:
        """The types taken for ``call_id``, in arrival order."""
        return [d["type"] for d in self.taken if d["data"].get("call_id") == call_id]

    async def wait_for(self, n: int, timeout_s: float = 10.0) -> None:
        for _ in range(int(timeout_s / 0.02)):
            if len(self.taken) >= n:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.taken)} of {n} webhooks arrived")
