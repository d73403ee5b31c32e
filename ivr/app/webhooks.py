"""Event webhooks: the outbox the call path emits into, and the sender that posts it.

:class:`Outbox` is the :class:`~ivr.call.events.EventSink` of the server: ``emit`` builds the
body and returns (nobody on the call path waits), one task writes what was emitted to the
store's ``webhook_outbox`` in order, a batch per transaction. :class:`WebhookSender` claims due
events (:class:`~ivr.store.webhooks.WebhookStore`: one per call at a time, so a call's events
arrive in order) and POSTs each body signed the Standard Webhooks way (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``; receivers verify with a stock library). A 2xx
answer is sent; anything else is tried again after ``retry_s``, doubled each time (at most
:data:`MAX_BACKOFF_S`), until ``max_attempts`` or ``max_age_s``: then ``failed``, shown in the
console (``GET /api/webhooks?status=failed``) and counted (``ivr_webhooks_total``).

The body: ``{"id": "msg_...", "type": "call.ended", "timestamp": "<ISO 8601>", "data": {...}}``;
``id`` is also the ``webhook-id``, the same on every attempt (receivers drop repeats by it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
from standardwebhooks.webhooks import Webhook

from ivr.call.events import Event
from ivr.clock import Clock
from ivr.config import WebhookSettings
from ivr.errors import StoreError
from ivr.store.webhooks import OutboxRow, WebhookStore
from ivr.tasks import Background

__all__ = ["MAX_BACKOFF_S", "Outbox", "WebhookSender", "body", "signed_headers"]

log = logging.getLogger("ivr.webhooks")

MAX_BACKOFF_S = 600.0  # the longest wait between two attempts
MAX_PENDING = 10_000  # events emitted but not in the store yet (the store is down): more are lost
KEEP_SENT_S = 7 * 86400.0  # sent events are deleted after this
LEASE_S = 30.0  # on top of the POST's timeout: a claimed event is due again after that


def body(event: Event, now: float) -> str:
    """The JSON body of ``event`` that happened at ``now`` (with a fresh message id)."""
    stamp = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
    msg_id = f"msg_{uuid.uuid4().hex}"
    payload = {"id": msg_id, "type": event.kind, "timestamp": stamp, "data": event.data}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


def signed_headers(signer: Webhook, row: OutboxRow, now: float) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt to post ``row`` at ``now``."""
    msg_id = str(json.loads(row.payload)["id"])
    at = datetime.fromtimestamp(int(now), UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now)),
        "webhook-signature": signer.sign(msg_id, at, row.payload),
    }


class Outbox:
    """Takes events on the call path and writes them to the outbox table in the background.

    ``events``: the kinds to keep (others are dropped at once); ``on_stored``: called after
    each batch is in the store (wakes the sender)."""

    def __init__(
        self,
        store: WebhookStore,
        events: tuple[str, ...],
        clock: Clock,
        on_stored: Callable[[], None] = lambda: None,
    ) -> None:
        self.store, self.events, self.clock, self.on_stored = store, events, clock, on_stored
        self._pending: collections.deque[tuple[str, str, str]] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.retry_s = 2.0  # after the store refused a batch
        self._closing = False

    def emit(self, event: Event) -> None:
        """Queue ``event`` (never waits, never raises)."""
        if event.kind not in self.events:
            return
        if len(self._pending) >= MAX_PENDING:
            log.error("webhook %s of call %s lost: the outbox is full", event.kind, event.call_id)
            return
        self._pending.append((event.kind, event.call_id, body(event, self.clock())))
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-outbox")

    async def close(self, timeout_s: float = 10.0) -> None:
        """Store what was emitted (waiting at most ``timeout_s`` for the store), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        self._wake.set()
        try:  # never cancelled mid-batch: a batch the store took would be stored again
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            task.cancel()
        if self._pending:
            log.error("%d webhook events not stored at stop", len(self._pending))

    async def _run(self) -> None:
        while True:
            while self._pending:
                if not await self._flush():
                    if self._closing:
                        return
                    await asyncio.sleep(self.retry_s)
            if self._closing:
                return
            await self._wake.wait()
            self._wake.clear()

    async def _flush(self) -> bool:
        batch = list(itertools.islice(self._pending, 500))
        try:
            await self.store.enqueue(batch, self.clock())
        except StoreError as exc:
            log.error("webhook events not stored yet (%d waiting): %s", len(self._pending), exc)
            return False
        for _ in batch:
            self._pending.popleft()
        self.on_stored()
        return True


class WebhookSender:
    """Posts due events from the outbox to ``settings.url`` until :meth:`close`.

    ``observe(event, result)`` counts each post (``sent``, ``retry``, ``failed``)."""

    def __init__(
        self,
        store: WebhookStore,
        settings: WebhookSettings,
        clock: Clock,
        observe: Callable[[str, str], None] = lambda event, result: None,
        *,
        poll_s: float = 2.0,
        concurrency: int = 8,
    ) -> None:
        self.store, self.settings, self.clock, self.observe = store, settings, clock, observe
        self.signer = Webhook(settings.signing_key())  # ConfigError without a usable secret
        self.poll_s, self.concurrency = poll_s, concurrency
        self._wake = asyncio.Event()
        self._task = Background("webhook-sender")
        self._session: aiohttp.ClientSession | None = None
        self._pruned_at = 0.0
        self.where = urlsplit(settings.url).netloc  # for logs: never the path or query

    def wake(self) -> None:
        """New events are in the outbox: look now, not at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._task.start(self._loop())
        log.info("webhooks: posting %s to %s", ", ".join(self.settings.events), self.where)

    async def close(self) -> None:
        """Stop; an event being posted is due again once its claim ends."""
        await self._task.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _loop(self) -> None:
        while True:
            try:
                wait_s = await self.run_once()
            except StoreError as exc:
                log.error("webhooks: the outbox cannot be read: %s", exc)
                wait_s = self.poll_s
            if wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait_s)
                self._wake.clear()

    async def run_once(self) -> float:
        """Post the events due now (different calls' at once, up to ``concurrency``); how
        long to wait before the next round (0: at once). An idle outbox costs one read per
        round, and rounds wait for the next event due (at most ``poll_s``: other nodes
        enqueue too)."""
        now = self.clock()
        if now - self._pruned_at > 3600:
            self._pruned_at = now
            await self.store.prune(now - KEEP_SENT_S)
        due = await self.store.next_due()
        if due is None or due > now:
            return self.poll_s if due is None else min(due - now, self.poll_s)
        # no more than can be posted at once: a claimed event never waits past its lease
        rows = await self.store.claim(now, self.settings.timeout_s + LEASE_S, self.concurrency)
        await asyncio.gather(*(self._post(row) for row in rows))
        return 0.0 if rows else self.poll_s  # none: another node took them

    async def _post(self, row: OutboxRow) -> None:
        error = await self._attempt(row)
        now = self.clock()
        if not error:
            await self.store.sent(row.id, now)
            self.observe(row.event, "sent")
            return
        delay = min(self.settings.retry_s * 2 ** (row.attempts - 1), MAX_BACKOFF_S)
        s = self.settings
        if row.attempts >= s.max_attempts or now + delay - row.created_at > s.max_age_s:
            await self.store.give_up(row.id, error)
            self.observe(row.event, "failed")
            log.error(
                "webhook %s of call %s failed after %d attempts: %s",
                row.event,
                row.call_id or "-",
                row.attempts,
                error,
            )
            return
        await self.store.retry(row.id, error, now + delay)
        self.observe(row.event, "retry")
        log.warning(
            "webhook %s of call %s: %s; retry in %.0f s", row.event, row.call_id, error, delay
        )

    async def _attempt(self, row: OutboxRow) -> str:
        """One POST; ``""`` when the receiver took it, else what went wrong."""
        assert self._session is not None
        headers = signed_headers(self.signer, row, self.clock())
        try:
            async with self._session.post(
                self.settings.url,
                data=row.payload.encode(),
                headers=headers,
                allow_redirects=False,  # a redirect is a failure: it would post elsewhere
            ) as response:
                if 200 <= response.status < 300:
                    return ""
                return f"HTTP {response.status} from {self.where}"
        except TimeoutError:
            return f"no answer from {self.where} in {self.settings.timeout_s:g} s"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
