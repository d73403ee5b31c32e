"""The core of ``Channel.listen`` over AudioSocket: play prompts while listening.

:func:`listen` is the asyncio shell around a :class:`~ivr.speech.turns.Turn`, which makes
every decision (barge-in, end of utterance, no input, keys, ``max_speech_s``; see its module).
It runs three tasks on one :class:`~ivr.asterisk.audiosocket.server.AudioSession`, feeding the
turn the loop clock's time with each event and carrying out what it decides:

- a *player* that writes the turn's 20 ms frames in real time, paced by the loop clock against
  absolute deadlines (no drift; when the loop was stalled it re-anchors instead of bursting):
  the prompt first, then silence, so Asterisk's 2 s inactivity timer never fires; after each
  frame it ticks the turn (quiet line, no-input);
- a *hearer* that reads caller frames and hands audio and keys to the turn;
- a *feeder* that creates the recogniser and calls ``accept``/``result`` in the executor,
  one call at a time, never on the loop, with the audio the turn chose.

At the end the session is closed with a hangup frame, so ``AudioSocket()`` returns and the
AGI script goes on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import wave
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from ivr.asterisk.audiosocket.protocol import Audio, Dtmf, ErrorFrame, Hangup
from ivr.asterisk.audiosocket.server import AudioSession
from ivr.asterisk.audiosocket.vad import VadConfig
from ivr.call.channel import Heard, ListenRequest, Prompt
from ivr.errors import AudioSocketError, CallHangup, SpeechError
from ivr.speech.base import Recognition, Recognizer, SpeechChoice, SpeechEngine
from ivr.speech.decision import decide, thresholds_for
from ivr.speech.keep import KeptUtterance
from ivr.speech.turns import (
    BYTES_PER_MS,
    FRAME_BYTES,
    FRAME_MS,
    Decision,
    Done,
    EndSpeech,
    Feed,
    Turn,
)

__all__ = [
    "FRAME_BYTES",
    "FRAME_MS",
    "STREAMABLE_KINDS",
    "Keep",
    "listen",
    "load_prompt_audio",
]

logger = logging.getLogger("ivr.speech.listen")

STREAMABLE_KINDS = ("tts", "file")
Keep = Callable[[KeptUtterance], object]  # takes each decoded utterance; must not block


def load_prompt_audio(prompts: Sequence[Prompt], prompts_dir: Path) -> bytes:
    """The prompts' PCM, concatenated (blocking: run it in an executor).

    Only project prompts (kinds ``tts``/``file``) stored as ``<prompts_dir>/<file>.wav`` in
    8 kHz 16-bit mono can be streamed; anything else raises :class:`AudioSocketError`.
    """
    root = prompts_dir.resolve()
    parts: list[bytes] = []
    for prompt in prompts:
        if prompt.kind not in STREAMABLE_KINDS:
            raise AudioSocketError(
                f"prompt {prompt.file!r} is of kind {prompt.kind!r}: a speech menu streams only "
                f"project prompts (kinds {', '.join(STREAMABLE_KINDS)}); use a text or file "
                "prompt rendered to 8 kHz WAV"
            )
        path = (root / f"{prompt.file}.wav").resolve()
        if not path.is_relative_to(root):
            raise AudioSocketError(f"prompt {prompt.file!r} points outside {root}")
        parts.append(_read_wav(path))
    return b"".join(parts)


def _read_wav(path: Path) -> bytes:
    try:
        with wave.open(str(path), "rb") as w:
            fmt = (w.getframerate(), w.getsampwidth(), w.getnchannels())
            pcm = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise AudioSocketError(
            f"prompt file {path} not found (render text prompts with `ivr prompts build`)"
        ) from None
    except (wave.Error, EOFError) as exc:
        raise AudioSocketError(f"prompt file {path} is not a readable WAV file: {exc}") from None
    if fmt != (8000, 2, 1):
        rate, width, channels = fmt
        raise AudioSocketError(
            f"prompt file {path} is {rate} Hz, {8 * width}-bit, {channels} channel(s); "
            "AudioSocket streams 8 kHz 16-bit mono only (re-render or convert it, e.g. "
            "`sox in.wav -r 8000 -b 16 -c 1 out.wav`)"
        )
    return pcm


def _choices(request: ListenRequest) -> list[SpeechChoice]:
    return [SpeechChoice(key, tuple(phrases)) for key, phrases in request.choices]


class _Listener:
    """The asyncio shell around one :class:`Turn`: see the module docstring for the tasks."""

    def __init__(
        self,
        session: AudioSession,
        request: ListenRequest,
        engine: SpeechEngine,
        executor: concurrent.futures.Executor,
        turn: Turn,
        keep: Keep | None = None,
        call_id: str = "",
    ) -> None:
        self.keep = keep
        self.call_id = call_id
        self.session = session
        self.request = request
        self.engine = engine
        self.executor = executor
        self.loop = asyncio.get_running_loop()
        self.turn = turn
        self.feed: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.result: asyncio.Future[Heard] = self.loop.create_future()
        self.late_reanchors = 0
        self.max_late_ms = 0.0

    def apply(self, decisions: list[Decision]) -> None:
        """Carry out what the turn decided."""
        for decision in decisions:
            if isinstance(decision, Feed):
                self.feed.put_nowait(decision.pcm)
            elif isinstance(decision, EndSpeech):
                self.feed.put_nowait(None)
            elif isinstance(decision, Done) and not self.result.done():
                self.result.set_result(decision.heard)
            # StopPrompt: next_frame already plays silence

    def fail(self, exc: BaseException) -> None:
        if not self.result.done():
            self.result.set_exception(exc)

    async def guard(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run one of the tasks; its failure becomes the listen's failure."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.fail(exc)

    # -- player
    async def play(self) -> None:
        """Write one frame every 20 ms until the result is known."""
        step = FRAME_MS / 1000
        deadline = self.loop.time()
        while not self.result.done():
            await self.session.send_audio(self.turn.next_frame(self.loop.time()))
            self.apply(self.turn.tick(self.loop.time()))
            deadline += step
            late = self.loop.time() - deadline
            if late > step:  # the loop stalled: re-anchor rather than burst to catch up
                self.late_reanchors += 1
                self.max_late_ms = max(self.max_late_ms, 1000 * late)
                deadline = self.loop.time()
            await asyncio.sleep(max(0.0, deadline - self.loop.time()))

    # -- hearer
    async def hear(self) -> None:
        """Consume caller frames until the peer hangs up."""
        async for frame in self.session.frames():
            if isinstance(frame, Audio):
                self.apply(self.turn.audio(frame.pcm, self.loop.time()))
            elif isinstance(frame, Dtmf):
                self.apply(self.turn.dtmf(frame.digit, self.loop.time()))
            elif isinstance(frame, Hangup):
                raise CallHangup("caller hung up (AudioSocket hangup frame)")
            elif isinstance(frame, ErrorFrame):
                if frame.code == 0x01:
                    raise CallHangup("caller hung up (AudioSocket error frame 0x01)")
                raise AudioSocketError(f"Asterisk sent AudioSocket error frame code={frame.code}")
        raise CallHangup("Asterisk closed the AudioSocket connection")

    # -- feeder
    async def run_recognizer(self) -> None:
        """Create the recogniser, feed it batches, then decode; all in the executor."""
        run = self.loop.run_in_executor
        rec: Recognizer = await run(
            self.executor, self.engine.recognizer, _choices(self.request), self.request.language
        )
        fed: list[bytes] = []
        while (batch := await self.feed.get()) is not None:
            await run(self.executor, rec.accept, batch)
            if self.keep is not None:
                fed.append(batch)
        try:
            heard: Recognition = await run(self.executor, rec.result)
        except SpeechError as exc:
            # The recogniser failed this answer (a decoding worker died or hung): the caller
            # hears the menu's "not understood" retry rather than losing the call.
            logger.warning("[%s] recogniser failed, heard as no match: %s", self.session.uuid, exc)
            heard = Recognition("", None, 0.0, self.engine.name)
        req = self.request
        limits = thresholds_for(self.engine.thresholds, req.min_confidence, req.accept_confidence)
        verdict = decide(heard, limits, req.confirm)
        self.apply(self.turn.recognised(heard, self.loop.time(), verdict))
        if self.keep is not None:
            self.keep(
                KeptUtterance(
                    b"".join(fed), self.call_id, req.flow, req.node, req.language,
                    self.engine.name, req.choices, heard, verdict, limits, req.confirm,
                )
            )  # fmt: skip


async def listen(
    session: AudioSession,
    request: ListenRequest,
    engine: SpeechEngine,
    prompts_dir: Path,
    executor: concurrent.futures.Executor,
    *,
    vad_config: VadConfig | None = None,
    batch_ms: int = 100,
    preroll_ms: int = 300,
    keep: Keep | None = None,
    call_id: str = "",
) -> Heard:
    """Play ``request.prompts`` on ``session`` while listening; return what was heard.

    Raises :class:`CallHangup` when the caller hangs up (hangup frame or EOF) and
    :class:`AudioSocketError` for prompts that cannot be streamed. The session is always
    closed on return (hangup frame first, so Asterisk's ``AudioSocket()`` returns).
    ``vad_config`` tunes the VAD; ``request.min_speech_ms`` only decides barge-in.
    ``keep`` gets each decoded utterance (the audio the recogniser was fed and what it made
    of it, for :class:`~ivr.speech.keep.UtteranceKeeper`), named by ``call_id``.
    """
    loop = asyncio.get_running_loop()
    config = vad_config or VadConfig()
    tasks: list[asyncio.Task[None]] = []
    try:
        prompt = await loop.run_in_executor(
            executor, load_prompt_audio, request.prompts, prompts_dir
        )
        turn = Turn(request, prompt, loop.time(), vad_config=config, batch_ms=batch_ms,
                    preroll_ms=preroll_ms)  # fmt: skip
        state = _Listener(session, request, engine, executor, turn, keep, call_id)
        for coro in (state.play(), state.hear(), state.run_recognizer()):
            tasks.append(asyncio.create_task(state.guard(coro)))
        heard = await state.result
        logger.info(
            "[%s] heard %s after %d of %d ms of prompt (confidence %.2f; late re-anchors %d, "
            "worst %.1f ms)", session.uuid, heard.kind, heard.prompt_played_ms,
            len(prompt) // BYTES_PER_MS, heard.confidence, state.late_reanchors,
            state.max_late_ms,
        )  # fmt: skip
        return heard
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
