"""The server's :class:`~ivr.call.messages.MessageSink`: a caller's message, once the call
let go of it, measured, transcribed, stored and announced, in the background.

Asterisk writes each message to ``<recordings>/messages/<name>.wav`` (the runtime names it,
never from caller input); :class:`MessageKeeper` reads the WAV's length in a worker thread,
transcribes it with the recogniser of the call's language when the server loaded one (a
worker thread too: seconds of CPU), writes the ``messages`` row and emits
``message.recorded``. The call never waits for any of it; :meth:`MessageKeeper.close`
waits for what is in hand at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import wave
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from ivr.call.events import EventSink, message_recorded
from ivr.call.messages import MESSAGES_SUBDIR, LeftMessage
from ivr.clock import Clock
from ivr.errors import IvrError
from ivr.speech.base import SpeechEngine
from ivr.speech.transcribe import transcribe
from ivr.store.messages import MessageStore

__all__ = ["MessageKeeper", "wav_seconds"]

log = logging.getLogger("ivr.messages")


def wav_seconds(path: Path) -> float:
    """The length of a WAV file (``0.0`` when it is missing or not a WAV)."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / w.getframerate()
    except (OSError, EOFError, wave.Error):
        return 0.0


class MessageKeeper:
    """Keeps left messages: the files under ``directory/messages``, the rows in ``table``."""

    def __init__(
        self,
        table: MessageStore,
        directory: Path,
        clock: Clock,
        events: EventSink | None = None,
        engines: Callable[[], Mapping[str, SpeechEngine]] = dict,
    ) -> None:
        self.table = table
        self.directory = directory.resolve() / MESSAGES_SUBDIR  # Asterisk needs an absolute path
        self.clock = clock
        self.events = events
        self.engines = engines  # the recognisers loaded, by language (none: no transcript)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Make the directory (Asterisk does not make it)."""
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def keep(self, message: LeftMessage) -> None:
        self._spawn(self._keep(message))

    def discard(self, name: str) -> None:
        self._spawn(asyncio.to_thread(self._unlink, name))

    async def close(self) -> None:
        """Wait for the messages in hand (stored before the store closes)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _unlink(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / f"{name}.wav").unlink()

    async def _keep(self, m: LeftMessage) -> None:
        file = self.directory / f"{m.name}.wav"
        try:
            seconds = await asyncio.to_thread(wav_seconds, file)
            if seconds <= 0:
                log.warning(
                    "call %s: message %s has no audio (%s); not kept", m.call_id, m.name, file
                )
                return
            transcript = await self._transcript(m, file)
            relative = f"{MESSAGES_SUBDIR}/{m.name}.wav"
            row = await self.table.add(
                call_id=m.call_id,
                flow=m.flow,
                node=m.node,
                caller=m.caller,
                file=relative,
                duration_s=round(seconds, 2),
                language=m.language,
                transcript=transcript,
                now=self.clock(),
            )
        except IvrError as exc:
            log.error("call %s: message %s not stored: %s", m.call_id, m.name, exc)
            return
        log.info("call %s: message %d kept (%s, %.1f s)", m.call_id, row, relative, seconds)
        if self.events is not None:
            self.events.emit(
                message_recorded(
                    m.call_id,
                    m.flow,
                    m.node,
                    m.caller,
                    relative,
                    round(seconds, 2),
                    m.language,
                    transcript,
                )
            )

    async def _transcript(self, m: LeftMessage, file: Path) -> str:
        engine = self.engines().get(m.language)
        if engine is None:
            return ""
        try:
            return await asyncio.to_thread(transcribe, engine, file)
        except Exception as exc:  # a recogniser failing costs the transcript, not the message
            log.warning("call %s: message %s not transcribed: %s", m.call_id, m.name, exc)
            return ""
