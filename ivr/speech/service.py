"""Speech menus for live calls: the AudioSocket server, the loaded engines and a thread pool.

:class:`SpeechService` is what the app installs as ``AgiChannel.listener``. For each speech
menu it registers a fresh uuid with the AudioSocket server, has the AGI side run
``EXEC AudioSocket <uuid>,<host:port>`` (the uuid is ours, never caller input), waits for
Asterisk to connect, and runs :func:`ivr.speech.listen.listen` on that session.
Engines are loaded once at start-up (a missing model fails start-up, naming the path);
decoding runs in ``workers`` threads so the event loop never waits on a recogniser. With an
:class:`~ivr.speech.keep.UtteranceKeeper` (``speech.keep_utterances``) each decoded utterance
is saved for tuning.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ivr.asterisk.audiosocket.server import AudioSession, AudioSocketServer
from ivr.call.channel import Channel, Heard, ListenRequest
from ivr.config import SpeechSettings
from ivr.errors import AudioSocketError, CallHangup, ConfigError, SpeechError
from ivr.health import Health
from ivr.speech.base import PooledEngine, SpeechEngine
from ivr.speech.engines import make_engine
from ivr.speech.keep import UtteranceKeeper
from ivr.speech.listen import listen

__all__ = ["SpeechService", "load_engines"]

log = logging.getLogger("ivr.speech")


def load_engines(settings: SpeechSettings) -> dict[str, SpeechEngine]:
    """The engine for each language the configuration covers (blocking: loads models).

    English uses ``english_engine`` (pocketsphinx, embedded, unless set to ``vosk``); the
    Vosk model, when one is configured, serves ``vosk_languages``. Raises
    :class:`ConfigError` naming the setting and the path when a model cannot be loaded.
    """
    engines: dict[str, SpeechEngine] = {}
    vosk_languages = [x.strip() for x in settings.vosk_languages.split(",") if x.strip()]
    try:
        if settings.vosk_model:
            if not Path(settings.vosk_model).is_dir():
                raise SpeechError(f"Vosk model directory not found: {settings.vosk_model}")
            from ivr.speech.vosk import VoskEngine

            vosk = VoskEngine(settings.vosk_model, languages=vosk_languages)
            engines.update(dict.fromkeys(vosk.languages(), vosk))
        if settings.english_engine == "vosk":
            if "en" not in engines:
                raise SpeechError(
                    "speech.english_engine is vosk but speech.vosk_model is "
                    "not set or does not list en in speech.vosk_languages"
                )
        else:
            engines["en"] = make_engine(
                settings.english_engine, processes=settings.pocketsphinx_processes
            )
    except (SpeechError, ValueError) as exc:
        raise ConfigError(f"speech: {exc}") from exc
    return engines


class SpeechService:
    """Listens on AudioSocket for speech menus; ``await start()``, then ``await close()``."""

    def __init__(
        self,
        settings: SpeechSettings,
        prompts_dir: str | Path,
        keeper: UtteranceKeeper | None = None,
    ) -> None:
        self.settings = settings
        self.keeper = keeper  # speech.keep_utterances: each live utterance saved
        self.prompts_dir = Path(prompts_dir)
        self.engines: dict[str, SpeechEngine] = {}
        self._loaded: dict[str, SpeechEngine] = {}  # as loaded (the app may wrap engines)
        self.server = AudioSocketServer(host=settings.host, port=settings.port)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, settings.workers), thread_name_prefix="speech"
        )

    async def start(self) -> None:
        """Load the engines (in a thread: models take seconds) and open the AudioSocket port."""
        self.engines = await asyncio.get_running_loop().run_in_executor(
            self._executor, load_engines, self.settings
        )
        self._loaded = dict(self.engines)
        try:
            await self.server.start()
        except OSError as exc:
            raise ConfigError(
                f"speech: cannot listen for AudioSocket on {self.settings.host}:"
                f"{self.settings.port}: {exc.strerror}"
            ) from exc
        log.info(
            "speech menus: Asterisk's AudioSocket() connects to %s; recognisers: %s",
            self.address,
            self._described(),
        )

    @property
    def address(self) -> str:
        """``host:port`` as Asterisk's ``AudioSocket()`` must dial it."""
        return f"{self.settings.advertise_host}:{self.server.port}"

    def missing(self, languages: Iterable[str]) -> list[str]:
        """Languages of speech menus that no loaded engine recognises."""
        return sorted(set(languages) - set(self.engines))

    async def audiosocket_health(self) -> Health:
        """Up while the AudioSocket port listens (the detail names no address)."""
        if not self.server.sockets:
            return Health("down", "not listening")
        return Health("up", f"{self.server.active_sessions} session(s)")

    async def recogniser_health(self) -> Health:
        """Up with at least one recogniser loaded, named by language."""
        if not self.engines:
            return Health("down", "no recogniser loaded")
        return Health("up", self._described())

    def _described(self) -> str:
        """``en=pocketsphinx (2 decoding processes), ko=vosk``; pools replaced after a worker
        crashed or hung are counted."""
        shown = []
        for lang, engine in sorted(self.engines.items()):
            loaded = self._loaded.get(lang, engine)
            about = f"{lang}={engine.name}"
            if isinstance(loaded, PooledEngine):
                about += f" ({loaded.processes} decoding processes"
                about += f", replaced {loaded.replaced}x)" if loaded.replaced else ")"
            shown.append(about)
        return ", ".join(shown)

    async def close(self) -> None:
        await self.server.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for engine in {id(e): e for e in self._loaded.values()}.values():
            if isinstance(engine, PooledEngine):
                await asyncio.get_running_loop().run_in_executor(None, engine.close)
        if self.keeper is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.keeper.close)

    async def listen(self, channel: Channel, request: ListenRequest) -> Heard:
        """Run one speech menu attempt on ``channel`` (the ``AgiChannel.listener`` hook)."""
        engine = self.engines.get(request.language)
        if engine is None:
            raise AudioSocketError(
                f"no speech engine for language {request.language!r} "
                f"(loaded: {', '.join(sorted(self.engines)) or 'none'})"
            )
        key = uuid.uuid4()
        expected = self.server.expect(key)
        # AudioSocket() blocks the AGI channel until the session ends; run it beside us.
        bridge = asyncio.create_task(channel.exec("AudioSocket", f"{key},{self.address}"))
        try:
            session = await _first(expected, bridge)
            keep = self.keeper.keep if self.keeper is not None else None
            return await listen(
                session, request, engine, self.prompts_dir, self._executor,
                keep=keep, call_id=channel.info.uniqueid,
            )  # fmt: skip
        finally:
            expected.cancel()
            # listen() closed the session with a hangup frame, so AudioSocket() returns now
            with contextlib.suppress(asyncio.TimeoutError, CallHangup, asyncio.CancelledError):
                await asyncio.wait_for(bridge, timeout=5)


async def _first(expected: asyncio.Future[AudioSession], bridge: asyncio.Task[int]) -> AudioSession:
    """The session, or why it never came: the AGI ``EXEC`` ended first (hangup, no module)."""
    either: set[asyncio.Future[Any]] = {expected, bridge}
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if expected.done():
        return expected.result()
    bridge.result()  # raises CallHangup when the caller left
    raise AudioSocketError(
        f"AudioSocket() returned {bridge.result()} before connecting: is "
        "app_audiosocket loaded and the speech address reachable?"
    )
