"""Every Asterisk box a node works with: one :class:`AmiClient` (and its queue watcher) per box.

A call belongs to the box that carries it. With several boxes, each box's ``systemname``
(asterisk.conf) is its name in ``ami.boxes``: Asterisk then starts every uniqueid with it
(``pbx1-1733560000.42``), so call ids never collide across boxes and the box of a call is read
from its id. The name is checked against what each box reports (``CoreSettings``) at every
login; a box that answers with another name, or none, gets no originates and says why in the
health check. Queue checks go to the call's box; callbacks and surveys are dialled from the
box of the call they follow, campaign calls from any box that is up, in turn.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import replace

from ivr.asterisk.ami.client import AmiClient, Message
from ivr.asterisk.ami.queues import AmiQueues
from ivr.config import AmiSettings
from ivr.config_boxes import AmiBox
from ivr.errors import AmiError
from ivr.health import Health

__all__ = ["AmiBoxes"]

log = logging.getLogger("ivr.asterisk.ami")


class AmiBoxes:
    """The AMI links of one node. ``await start()``, then ``await close()``."""

    def __init__(
        self, settings: AmiSettings, on_reconnect: Callable[[], None] | None = None
    ) -> None:
        self.boxes = settings.box_list()
        self.named = any(box.name for box in self.boxes)  # else: one box, nothing to check
        self.clients = {
            box.name: AmiClient(replace(settings, host=box.host, port=box.port), on_reconnect)
            for box in self.boxes
        }
        self.queues = {name: AmiQueues(client) for name, client in self.clients.items()}
        # why a box must not be used ("" = fine); set at each login of a named box
        self.problems: dict[str, str] = dict.fromkeys(self.clients, "")
        self._turn = itertools.cycle([box.name for box in self.boxes])
        self._checks: set[asyncio.Task[None]] = set()
        for box in self.boxes:
            if self.named:
                self.clients[box.name].on_login = self._checker(box)

    async def start(self, wait_s: float = 3.0) -> None:
        """Connect to every box at once (none blocks start-up while it is down)."""
        await asyncio.gather(*(c.start(wait_s) for c in self.clients.values()))
        if self._checks:
            await asyncio.gather(*self._checks, return_exceptions=True)

    async def close(self) -> None:
        for task in self._checks:
            task.cancel()
        await asyncio.gather(*(c.close() for c in self.clients.values()))

    @property
    def up(self) -> bool:
        """At least one box can be used."""
        return any(self._usable(name) for name in self.clients)

    def box_of(self, call_id: str) -> str:
        """The box whose calls have ids like ``call_id`` (its systemname first); "" when
        there is one unnamed box, or no box matches."""
        matches = [name for name in self.clients if name and call_id.startswith(f"{name}-")]
        return max(matches, key=len, default="")

    def queues_for(self, call_id: str) -> AmiQueues | None:
        """The queue checks of the box carrying ``call_id`` (``None``: no such box)."""
        box = self.box_of(call_id)
        return self.queues.get(box) if box or not self.named else None

    async def originate(self, channel: str, *, follows: str = "", **fields: object) -> Message:
        """``Originate`` (see :meth:`AmiClient.originate`) on the box of the call it
        ``follows`` (a callback, a survey), else on the next usable box in turn."""
        box = self.box_of(follows)
        if not (box and self._usable(box)):
            box = next(
                (n for n in itertools.islice(self._turn, len(self.clients)) if self._usable(n)),
                "",
            )
            if not self._usable(box):
                raise AmiError("no Asterisk box is up to place the call")
        return await self.clients[box].originate(channel, **fields)  # type: ignore[arg-type]

    async def channel_exists(self, channel: str) -> bool:
        """Whether any box has that channel. ``False`` only when every box says it has
        not; :class:`AmiError` when one cannot tell and none has it."""
        unknown: list[str] = []
        for name, client in self.clients.items():
            try:
                if await client.channel_exists(channel):
                    return True
            except AmiError as exc:
                unknown.append(f"{name or 'asterisk'}: {exc}")
        if unknown:
            raise AmiError(f"cannot tell whether {channel} exists ({'; '.join(unknown)})")
        return False

    async def health(self) -> Health:
        """Up while a box is usable (the detail names the boxes that are not), else down."""
        states = {name or "asterisk": self._state(name) for name in self.clients}
        bad = {name: state for name, state in states.items() if state != "up"}
        if not bad:
            reconnects = sum(c.reconnects for c in self.clients.values())
            return Health("up", f"{len(states)} box(es), {reconnects} reconnect(s)")
        detail = "; ".join(f"{name}: {state}" for name, state in bad.items())
        return Health("up" if len(bad) < len(states) else "down", detail)

    def _usable(self, name: str) -> bool:
        client = self.clients.get(name)
        return client is not None and client.up and not self.problems[name]

    def _state(self, name: str) -> str:
        if not self.clients[name].up:
            return "unreachable or login refused; reconnecting"
        return self.problems[name] or "up"

    def _checker(self, box: AmiBox) -> Callable[[], None]:
        def on_login() -> None:
            self.problems[box.name] = "checking its systemname"
            task = asyncio.get_running_loop().create_task(self._check_name(box))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

        return on_login

    async def _check_name(self, box: AmiBox) -> None:
        try:
            [reply, *_] = await self.clients[box.name].action("CoreSettings")
        except AmiError as exc:
            self.problems[box.name] = f"cannot read its systemname: {exc}"
            return
        said = str(reply.get("SystemName", "") or "")
        if said == box.name:
            self.problems[box.name] = ""
            return
        self.problems[box.name] = (
            f"its systemname is {said!r}, not {box.name!r}: set systemname = {box.name} in "
            "its asterisk.conf (uniqueids of boxes without one repeat across boxes)"
        )
        log.error("AMI box at %s:%d: %s", box.host, box.port, self.problems[box.name])
