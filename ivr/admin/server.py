"""The admin API's listener inside ``ivr serve`` (aiohttp ``AppRunner`` + ``TCPSite``)."""

from __future__ import annotations

import logging

from aiohttp import web

from ivr.admin.api import make_admin_app
from ivr.admin.console import Console
from ivr.admin.guard import allowed_host_names
from ivr.clock import Clock, system_clock
from ivr.config import AdminSettings
from ivr.errors import ConfigError

log = logging.getLogger("ivr.admin")

LOOPBACK = ("127.0.0.1", "::1", "localhost")
SHUTDOWN_TIMEOUT_S = 2.0  # open dashboard connections never hold up a stop for long


class AdminServer:
    """Serves :func:`~ivr.admin.api.make_admin_app` on ``settings.host:settings.port``
    (port 0: any free port, see :attr:`port`); ``now`` is the server's wall clock.
    ``await start()``, then ``await close()``."""

    def __init__(
        self, console: Console, settings: AdminSettings, now: Clock = system_clock
    ) -> None:
        self.console = console
        self.settings = settings
        self.now = now
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    async def start(self) -> None:
        """Listen; :class:`ConfigError` naming ``host:port`` when that address is taken, or for
        a bad ``admin.allowed_hosts``."""
        s = self.settings
        runner = web.AppRunner(
            make_admin_app(self.console, s, now=self.now),
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        site = web.TCPSite(runner, s.host, s.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"admin: cannot listen on {s.host}:{s.port}: "
                f"{exc.strerror or exc} (set admin.port, or admin.enabled: "
                "false)"
            ) from exc
        self._runner, self._site = runner, site
        log.info("admin API and dashboard on http://%s:%d/", s.host, self.port)
        if s.token is None and not s.open_read:
            log.warning(
                "admin: no IVR_ADMIN_TOKEN, so /api/* answers 403 (only /healthz, "
                "/metrics, /schema/flow.json and the dashboard's files are open)"
            )
        elif s.token is None:
            log.warning(
                "admin: no IVR_ADMIN_TOKEN: read-only endpoints are open, reload is refused (403)"
            )
        if s.open_read and s.host not in LOOPBACK:
            log.warning("admin: open_read on %s: anyone who reaches it reads call data", s.host)
        if s.host not in LOOPBACK:  # reached by another name: say which ones are accepted
            log.info(
                "admin: answers requests whose Host is one of %s (more names: admin.allowed_hosts)",
                ", ".join(sorted(allowed_host_names(s))),
            )

    @property
    def app(self) -> web.Application | None:
        """The served application (``None`` until started)."""
        return self._runner.app if self._runner is not None else None

    @property
    def port(self) -> int:
        """The bound port (the real one when configured with port 0)."""
        server = self._site._server if self._site is not None else None
        for sock in getattr(server, "sockets", None) or ():
            return int(sock.getsockname()[1])
        return self.settings.port

    async def close(self) -> None:
        runner, self._runner, self._site = self._runner, None, None
        if runner is not None:
            await runner.cleanup()
