"""How a component of the running server says how it is: ``up``, ``down`` or ``off``.

Each component reports its own (:meth:`ivr.store.records.RecordStore.health`,
:meth:`ivr.asterisk.ami.client.AmiClient.health`, the speech service's); the admin console
only collects them. No ``detail`` names a file, host or port: ``/healthz`` shows it to anyone
(the log has those).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Health", "HealthCheck", "Status", "always"]

Status = Literal["up", "down", "off"]


@dataclass(frozen=True)
class Health:
    """One component's state: ``up``, ``down`` (should work and does not) or ``off``
    (not configured). ``/healthz`` shows ``detail`` to anyone: it names no file, host or
    port (the log has those)."""

    status: Status
    detail: str = ""


# A component's own report, asked for on each /healthz
HealthCheck = Callable[[], Awaitable[Health]]


def always(health: Health) -> HealthCheck:
    """A check that always reports ``health`` (a component that is off, or not started)."""

    async def check() -> Health:
        return health

    return check
