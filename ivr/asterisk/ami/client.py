"""AMI client on panoramisk: login, keepalive, reconnect with backoff, typed actions, events.

panoramisk does the protocol (framing, ActionIDs, multi-event responses). This module adds
what a server that must never double-dial needs around it:

- **no action is ever re-sent by a reconnect.** panoramisk re-sends actions that got no
  response when the link comes back; an ``Originate`` sent twice rings a customer twice. Every
  action is "forgettable" here: a lost response fails the caller's await with
  :class:`AmiError` after ``action_timeout_s``, and the caller decides (callbacks record an
  attempt before dialling, so a lost one is never retried blindly);
- **keepalive that notices a dead link**: a ``Ping`` every ``ping_s``; no answer in time
  closes the transport, which starts a reconnect;
- **reconnect with exponential backoff** (1 s doubling to ``reconnect_max_s``), reset by a
  successful login;
- :attr:`AmiClient.up` for health checks; the server keeps serving DTMF flows while AMI is
  down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from panoramisk import Manager
from panoramisk.message import Message

from ivr.config import AmiSettings
from ivr.errors import AmiError
from ivr.health import Health

__all__ = ["AmiClient", "Message"]

log = logging.getLogger("ivr.asterisk.ami")

EventHandler = Callable[[Message], None]

# Every action we send, so panoramisk never re-sends one after a reconnect (see above).
_ACTIONS = (
    "ping",
    "login",
    "logoff",
    "queuesummary",
    "queuestatus",
    "originate",
    "hangup",
    "getvar",
    "setvar",
    "status",
    "command",
    "coreshowchannels",
    "coresettings",
)


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager with a backoff that grows on each failed connect."""

    backoff_max_s: float = 30.0
    reconnect_timeout: float

    def connect(
        self, run_forever: bool = False, on_startup: Any = None, on_shutdown: Any = None
    ) -> Any:
        task = super().connect(run_forever, on_startup, on_shutdown)
        # the delay before the NEXT attempt, should this one fail (reset on login)
        delay: float = self.reconnect_timeout
        self.reconnect_timeout = min(max(1.0, delay * 2), self.backoff_max_s)
        return task


class AmiClient:
    """One AMI connection for the whole server. ``await start()``, then ``await close()``."""

    def __init__(
        self, settings: AmiSettings, on_reconnect: Callable[[], None] | None = None
    ) -> None:
        self.settings = settings
        self.on_reconnect = on_reconnect
        self.on_login: Callable[[], None] | None = None  # after each login (checks)
        self._manager: _Manager | None = None
        self._logged_in = asyncio.Event()
        self._ever_up = False
        self._keepalive: asyncio.Task[None] | None = None
        self._handlers: list[tuple[str, EventHandler]] = []
        self.reconnects = 0

    # -- lifecycle
    async def start(self, wait_s: float = 3.0) -> None:
        """Connect and log in in the background; wait up to ``wait_s`` for the first login.

        Never fails because Asterisk is down: the client keeps retrying and :attr:`up` says
        how it is. A refused login is logged (check IVR_AMI_SECRET) and retried likewise.
        """
        s = self.settings
        if s.secret is None:
            raise AmiError("AMI needs a secret: set IVR_AMI_SECRET or IVR_AMI_SECRET_FILE")
        manager = _Manager(
            host=s.host,
            port=s.port,
            username=s.username,
            secret=s.secret.reveal().decode(),
            loop=asyncio.get_running_loop(),
            ping_delay=10**6,
            reconnect_timeout=1,
            forgetable_actions=_ACTIONS,
            log=logging.getLogger("ivr.asterisk.ami.panoramisk"),
            on_login=self._on_login,
            on_disconnect=self._on_disconnect,
        )
        manager.backoff_max_s = s.reconnect_max_s
        for pattern, handler in self._handlers:
            manager.register_event(pattern, self._dispatch(handler))
        self._manager = manager
        manager.connect()
        self._keepalive = asyncio.create_task(self._keep_alive())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._logged_in.wait(), wait_s)
        if not self.up:
            log.warning(
                "AMI not available yet at %s:%d (user %s); retrying in the background",
                s.host,
                s.port,
                s.username,
            )

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        if self._manager is not None:
            manager, self._manager = self._manager, None
            manager.connection_lost = lambda exc: None  # no reconnect after close
            manager.close()
        self._logged_in.clear()

    @property
    def up(self) -> bool:
        """Connected and logged in."""
        return self._logged_in.is_set()

    async def health(self) -> Health:
        """Up when logged in (the detail names no host)."""
        if not self.up:
            return Health("down", "unreachable or login refused; reconnecting")
        return Health("up", f"{self.reconnects} reconnect(s)")

    # -- events
    def on_event(self, pattern: str, handler: EventHandler) -> None:
        """Call ``handler(message)`` for each event whose name matches ``pattern`` (fnmatch)."""
        self._handlers.append((pattern, handler))
        if self._manager is not None:
            self._manager.register_event(pattern, self._dispatch(handler))

    @staticmethod
    def _dispatch(handler: EventHandler) -> Callable[[Manager, Message], None]:
        def call(_: Manager, message: Message) -> None:
            try:
                handler(message)
            except Exception:  # one bad handler must not stop the others or the link
                log.exception("AMI event handler failed on %s", message.get("Event"))

        return call

    def _on_login(self, manager: Manager) -> None:
        manager.reconnect_timeout = 1
        if self._ever_up:
            self.reconnects += 1
            if self.on_reconnect is not None:
                self.on_reconnect()
        self._ever_up = True
        self._logged_in.set()
        if self.on_login is not None:
            self.on_login()
        log.info(
            "AMI logged in at %s:%d as %s",
            self.settings.host,
            self.settings.port,
            self.settings.username,
        )

    def _on_disconnect(self, manager: Manager, exc: object) -> None:
        if self._logged_in.is_set():
            log.warning("AMI connection lost; reconnecting")
        self._logged_in.clear()

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ping_s)
            if not self.up or self._manager is None:
                continue
            try:
                await self.action("Ping")
            except AmiError:
                log.warning("AMI did not answer a Ping; dropping the link to reconnect")
                self._logged_in.clear()
                protocol = getattr(self._manager, "protocol", None)
                if protocol is not None and protocol.transport is not None:
                    protocol.transport.abort()  # connection_lost -> panoramisk reconnects

    # -- actions
    async def action(
        self, name: str, timeout_s: float | None = None, **fields: str
    ) -> list[Message]:
        """Send one action and return its messages (the response, then any event list).

        Raises :class:`AmiError` when AMI is down, the action times out (``timeout_s``,
        default ``action_timeout_s``), or Asterisk answers ``Error``. Never re-sent: after a
        timeout the caller decides what to do.
        """
        if not self.up or self._manager is None:
            raise AmiError(f"AMI is not connected (action {name})")
        bound = self.settings.action_timeout_s if timeout_s is None else timeout_s
        future = self._manager.send_action({"Action": name, **fields})
        try:
            reply = await asyncio.wait_for(asyncio.shield(future), bound)
        except TimeoutError:
            raise AmiError(f"AMI action {name} got no answer within {bound} s") from None
        messages: list[Message] = reply if isinstance(reply, list) else [reply]
        first = messages[0]
        if str(first.get("Response", "")).lower() == "error":
            raise AmiError(f"AMI {name}: {first.get('Message', 'error')}")
        return messages

    async def originate(
        self,
        channel: str,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        caller_id: str = "",
        variables: dict[str, str] | None = None,
        timeout_s: float = 30,
        channel_id: str = "",
    ) -> Message:
        """``Originate`` asynchronously; returns the ``OriginateResponse`` event once the far
        end answered or failed (``Response: Success`` / ``Failure``, ``Reason`` code).

        ``channel`` and ``variables`` must come from configuration or our own records, never
        from caller input in a channel string. ``channel_id`` names the new channel's
        uniqueid so the call can be found again (a lost response is not retried blindly).
        """
        fields = {
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "Async": "true",
            "Timeout": str(int(timeout_s * 1000)),
        }
        if caller_id:
            fields["CallerID"] = caller_id
        if channel_id:
            fields["ChannelId"] = channel_id
        if variables:
            fields["Variable"] = ",".join(f"{k}={v}" for k, v in variables.items())
        messages = await self.action(
            "Originate", timeout_s=timeout_s + self.settings.action_timeout_s, **fields
        )
        for message in messages:
            if str(message.get("Event", "")) == "OriginateResponse":
                return message
        return messages[-1]

    async def getvar(self, channel: str, name: str) -> str | None:
        [reply, *_] = await self.action("Getvar", Channel=channel, Variable=name)
        value = reply.get("Value")
        return None if value in (None, "(null)") else str(value)

    async def channel_exists(self, channel: str) -> bool:
        """Whether Asterisk has a channel of that name or uniqueid (an Originate's
        ``ChannelId``). :class:`AmiError` when it cannot tell (AMI down, no answer)."""
        try:
            await self.action("Getvar", Channel=channel, Variable="CHANNEL(state)")
        except AmiError as exc:
            if "no such channel" in str(exc).lower():
                return False
            raise
        return True

    async def setvar(self, channel: str, name: str, value: str) -> None:
        await self.action("Setvar", Channel=channel, Variable=name, Value=value)

    async def hangup(self, channel: str) -> None:
        await self.action("Hangup", Channel=channel)

    async def queue_summary(self, queue: str) -> dict[str, str]:
        """The ``QueueSummary`` event of one queue (Available, LoggedIn, Callers, HoldTime,
        TalkTime, LongestHoldTime); ``{}`` for a queue Asterisk does not know."""
        for message in await self.action("QueueSummary", Queue=queue):
            if message.get("Event") == "QueueSummary" and message.get("Queue") == queue:
                return {str(k): str(v) for k, v in message.items()}
        return {}

    async def queue_status(self, queue: str) -> list[dict[str, str]]:
        """``QueueStatus``: the QueueParams, QueueMember and QueueEntry events of one queue."""
        return [
            {str(k): str(v) for k, v in m.items()}
            for m in await self.action("QueueStatus", Queue=queue)
            if m.get("Event") in ("QueueParams", "QueueMember", "QueueEntry")
        ]
