"""Agent queues over AMI: the interpreter's :class:`~ivr.runtime.queueing.QueuePort`.

``state()`` asks ``QueueSummary``; ``watch()`` follows one caller's channel through the queue
events (``AgentConnect``: who answered after how long on hold; ``AgentComplete``: talk time;
``QueueCallerAbandon``: left while waiting), so the record says what really happened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ivr.asterisk.ami.client import AmiClient, Message
from ivr.call.queue import QueueState
from ivr.errors import AmiError

log = logging.getLogger("ivr.asterisk.ami")

# QueueMember Status (device state): 0 unknown, 4 invalid, 5 unavailable
_OFF_DUTY = {"0", "4", "5"}


@dataclass
class CallerWatch:
    """One caller in a queue, as the events tell it."""

    uniqueid: str
    owner: AmiQueues
    agent: str = ""
    hold_s: float = 0.0
    talk_s: float = 0.0
    abandoned: bool = False

    def close(self) -> None:
        self.owner.forget(self.uniqueid)


class AmiQueues:
    """Queue state and caller events from one :class:`AmiClient`."""

    def __init__(self, ami: AmiClient) -> None:
        self.ami = ami
        self._watches: dict[str, CallerWatch] = {}
        ami.on_event("AgentConnect", self._on_connect)
        ami.on_event("AgentComplete", self._on_complete)
        ami.on_event("QueueCallerAbandon", self._on_abandon)

    async def state(self, queue: str) -> QueueState | None:
        if not self.ami.up:
            return None
        try:
            summary = await self.ami.queue_summary(queue)
            members = [
                e for e in await self.ami.queue_status(queue) if e.get("Event") == "QueueMember"
            ]
        except AmiError as exc:
            log.warning("queue %s: AMI failed: %s", queue, exc)
            return None
        if not summary:
            log.error("Asterisk has no queue named %r (queues.conf)", queue)
            return None
        # on duty: reachable (not unavailable/invalid/unknown) and not paused
        staffed = sum(
            1 for e in members if e.get("Paused") != "1" and e.get("Status") not in _OFF_DUTY
        )
        return QueueState(
            logged_in=_int(summary.get("LoggedIn")),
            available=_int(summary.get("Available")),
            callers=_int(summary.get("Callers")),
            holdtime_s=_float(summary.get("HoldTime")),
            talktime_s=_float(summary.get("TalkTime")),
            longest_hold_s=_float(summary.get("LongestHoldTime")),
            staffed=staffed,
        )

    async def snapshot(self, queues: list[str]) -> list[dict[str, object]]:
        """Every named queue's state, for the ops console (empty when AMI is down)."""
        out: list[dict[str, object]] = []
        for name in queues:
            state = await self.state(name)
            if state is not None:
                out.append(
                    {
                        "name": name,
                        "logged_in": state.logged_in,
                        "on_duty": state.on_duty,
                        "available": state.available,
                        "callers": state.callers,
                        "holdtime_s": state.holdtime_s,
                        "longest_wait_s": state.longest_hold_s,
                    }
                )
        return out

    def watch(self, uniqueid: str) -> CallerWatch:
        watch = CallerWatch(uniqueid, self)
        self._watches[uniqueid] = watch
        return watch

    def forget(self, uniqueid: str) -> None:
        self._watches.pop(uniqueid, None)

    def _find(self, message: Message) -> CallerWatch | None:
        return self._watches.get(str(message.get("Uniqueid", "")))

    def _on_connect(self, message: Message) -> None:
        if (watch := self._find(message)) is not None:
            watch.agent = str(message.get("Interface") or message.get("MemberName") or "")
            watch.hold_s = _float(message.get("HoldTime"))

    def _on_complete(self, message: Message) -> None:
        if (watch := self._find(message)) is not None:
            watch.talk_s = _float(message.get("TalkTime"))

    def _on_abandon(self, message: Message) -> None:
        if (watch := self._find(message)) is not None:
            watch.abandoned = True
            watch.hold_s = _float(message.get("HoldTime"))


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _float(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0
