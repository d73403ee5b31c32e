"""The core of ``Channel.listen`` over AudioSocket: play prompts while listening.

:func:`listen` runs three things on one :class:`~ivr.asterisk.audiosocket.server.AudioSession`:

- a *player* that writes 20 ms frames in real time, paced by the loop clock against absolute
  deadlines (no drift; when the loop was stalled it re-anchors instead of bursting): the
  prompt first, then silence, so Asterisk's 2 s inactivity timer never fires;
- a *hearer* that reads caller frames: audio goes to the :class:`~ivr.asterisk.audiosocket.vad.Vad`
  and, once speech starts (with a pre-roll of the audio just before), to the recogniser in
  batches of ``batch_ms``; keys end the listen at once;
- a *feeder* that creates the recogniser and calls ``accept``/``result`` in the executor,
  one call at a time, never on the loop.

Barge-in: when ``request.barge_in``, the prompt stops as soon as speech has lasted
``min_speech_ms`` (voiced time, or a key arrives); silence keeps flowing. Shorter sounds over
the prompt (a cough) are forgotten. After the prompt, any speech the VAD finds counts, so a
short "yes" is heard. The recogniser only ever hears one utterance: the pre-roll before the
VAD's start plus the speech up to its end (or ``max_speech_s``). With ``barge_in=False`` caller
audio and keys during the prompt are ignored, as with ``STREAM FILE`` without escape digits.
At the end the session is closed with a hangup frame, so ``AudioSocket()`` returns and the
AGI script goes on.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import wave
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ivr.asterisk.audiosocket.protocol import Audio, Dtmf, ErrorFrame, Hangup
from ivr.asterisk.audiosocket.server import AudioSession
from ivr.asterisk.audiosocket.vad import SpeechEnd, SpeechStart, Vad, VadConfig
from ivr.call.channel import DTMF_DIGITS, Heard, ListenRequest, Prompt
from ivr.errors import AudioSocketError, CallHangup
from ivr.speech.base import Recognition, Recognizer, SpeechChoice, SpeechEngine

__all__ = ["FRAME_BYTES", "FRAME_MS", "STREAMABLE_KINDS", "listen", "load_prompt_audio"]

logger = logging.getLogger("ivr.speech.listen")

FRAME_MS = 20
FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit mono
_BYTES_PER_MS = FRAME_BYTES // FRAME_MS
SILENCE = bytes(FRAME_BYTES)
_QUIET_LINE_S = 0.2  # no caller frame for this long: the line is silent
STREAMABLE_KINDS = ("tts", "file")


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
    """The shared state of one listen; see the module docstring for the three tasks."""

    def __init__(
        self,
        session: AudioSession,
        request: ListenRequest,
        engine: SpeechEngine,
        executor: concurrent.futures.Executor,
        prompt: bytes,
        vad_config: VadConfig,
        batch_ms: int,
        preroll_ms: int,
    ) -> None:
        self.session = session
        self.request = request
        self.engine = engine
        self.executor = executor
        self.loop = asyncio.get_running_loop()
        self.prompt = prompt
        self.sent_prompt = 0  # bytes of prompt written
        self.prompt_stopped = not prompt
        self.prompt_end: float | None = self.loop.time() if not prompt else None
        self.vad_config = vad_config
        self.vad = Vad(vad_config)
        self.batch_bytes = batch_ms * _BYTES_PER_MS
        self.preroll: collections.deque[bytes] = collections.deque(
            maxlen=(preroll_ms + vad_config.min_speech_ms + vad_config.max_gap_ms) // FRAME_MS + 1
        )
        self.vad_open = request.barge_in  # without barge-in: a fresh VAD once the prompt ends
        self.in_utterance = False  # the VAD hears speech
        self.confirmed = False  # ... long enough to barge in (or the prompt is over)
        self.pending = bytearray()  # pre-roll and speech not confirmed yet
        self.utterance_start_ms = 0
        self.feed_closed = False
        self.batch = bytearray()
        self.feed: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.result: asyncio.Future[Heard] = self.loop.create_future()
        self.late_reanchors = 0
        self.max_late_ms = 0.0
        self.heard_until = self.loop.time()  # caller audio accounted for up to here

    # -- outcome
    def finish(self, heard: Heard) -> None:
        if not self.result.done():
            self.result.set_result(
                replace(heard, prompt_played_ms=self.sent_prompt // _BYTES_PER_MS)
            )

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

    def stop_prompt(self) -> None:
        if not self.prompt_stopped:
            self.prompt_stopped = True
            self.prompt_end = self.loop.time()

    @property
    def listening(self) -> bool:
        """Caller input counts (always with barge-in, else only after the prompt)."""
        return self.request.barge_in or self.prompt_stopped

    # -- player
    async def play(self) -> None:
        """Write one frame every 20 ms until the result is known."""
        step = FRAME_MS / 1000
        deadline = self.loop.time()
        while not self.result.done():
            await self.session.send_audio(self._next_frame())
            self._fill_quiet_line()
            self._check_no_input()
            deadline += step
            late = self.loop.time() - deadline
            if late > step:  # the loop stalled: re-anchor rather than burst to catch up
                self.late_reanchors += 1
                self.max_late_ms = max(self.max_late_ms, 1000 * late)
                deadline = self.loop.time()
            await asyncio.sleep(max(0.0, deadline - self.loop.time()))

    def _next_frame(self) -> bytes:
        if self.prompt_stopped:
            return SILENCE
        chunk = self.prompt[self.sent_prompt : self.sent_prompt + FRAME_BYTES]
        self.sent_prompt += len(chunk)
        if self.sent_prompt >= len(self.prompt):
            self.stop_prompt()
        return chunk.ljust(FRAME_BYTES, b"\0")

    def _fill_quiet_line(self) -> None:
        """A phone that stops sending RTP (silence suppression, a stream that ended) makes
        Asterisk send nothing: after a short gap, hear that as silence, so an utterance
        still ends and no-input still comes."""
        now = self.loop.time()
        if now - self.heard_until > _QUIET_LINE_S:
            while self.heard_until < now:
                self.heard_until += FRAME_MS / 1000
                self._on_audio(SILENCE)

    def _check_no_input(self) -> None:
        if self.in_utterance or self.confirmed or self.prompt_end is None:
            return  # speech under way or being decoded: its result will come
        if self.loop.time() - self.prompt_end >= self.request.no_input_timeout_s:
            self.finish(Heard("no_input"))

    # -- hearer
    async def hear(self) -> None:
        """Consume caller frames until the peer hangs up."""
        async for frame in self.session.frames():
            if isinstance(frame, Audio):
                self.heard_until = max(self.heard_until, self.loop.time())
                self._on_audio(frame.pcm)
            elif isinstance(frame, Dtmf):
                self._on_dtmf(frame.digit)
            elif isinstance(frame, Hangup):
                raise CallHangup("caller hung up (AudioSocket hangup frame)")
            elif isinstance(frame, ErrorFrame):
                if frame.code == 0x01:
                    raise CallHangup("caller hung up (AudioSocket error frame 0x01)")
                raise AudioSocketError(f"Asterisk sent AudioSocket error frame code={frame.code}")
        raise CallHangup("Asterisk closed the AudioSocket connection")

    def _on_dtmf(self, digit: str) -> None:
        if not self.request.dtmf or digit not in DTMF_DIGITS or not self.listening:
            return
        self.stop_prompt()
        self.finish(Heard("dtmf", digit, choice=digit))

    def _on_audio(self, pcm: bytes) -> None:
        if self.result.done() or self.feed_closed:
            return
        if not self.listening:
            self.vad.process(pcm)  # the floor adapts to the line; speech is not heard yet
            return
        if not self.vad_open:  # the prompt just ended: forget speech heard over it
            floor = self.vad.noise_floor_dbfs
            self.vad = Vad(replace(self.vad_config, initial_floor_dbfs=floor))
            self.vad_open = True
        events = self.vad.process(pcm)
        if self.in_utterance:
            self._add_speech(pcm)
        else:
            self.preroll.append(pcm)
        for event in events:
            if isinstance(event, SpeechStart) and not self.in_utterance:
                self._start_utterance(event)
            elif isinstance(event, SpeechEnd) and self.in_utterance:
                if self.confirmed or self.prompt_stopped:
                    self._confirm()
                    self._end_utterance()
                else:  # a cough or click over the prompt: forget it, keep playing
                    logger.debug("[%s] ignored %d ms of sound over the prompt",
                                 self.session.uuid, event.duration_ms)  # fmt: skip
                    self.in_utterance = False
                    self.pending.clear()
        long_enough = self.prompt_stopped or self.vad.voiced_ms >= self.request.min_speech_ms
        if self.in_utterance and not self.confirmed and long_enough:
            self._confirm()
        if self.in_utterance:
            spoken_ms = self.vad.position_ms - self.utterance_start_ms
            if spoken_ms >= 1000 * self.request.max_speech_s:
                self.vad.cut()
                self._end_utterance()

    def _start_utterance(self, event: SpeechStart) -> None:
        self.in_utterance = True
        self.utterance_start_ms = event.start_ms
        self.pending = bytearray(b"".join(self.preroll))
        self.preroll.clear()

    def _confirm(self) -> None:
        """Speech long enough to count: barge in, and let the recogniser hear it all."""
        if self.confirmed:
            return
        self.confirmed = True
        self.stop_prompt()
        self._add_speech(bytes(self.pending))
        self.pending.clear()

    def _add_speech(self, pcm: bytes) -> None:
        if not self.confirmed:
            self.pending += pcm
            return
        self.batch += pcm
        if len(self.batch) >= self.batch_bytes:
            self.feed.put_nowait(bytes(self.batch))
            self.batch.clear()

    def _end_utterance(self) -> None:
        self.in_utterance = False
        if self.batch:
            self.feed.put_nowait(bytes(self.batch))
            self.batch.clear()
        self.feed.put_nowait(None)
        self.feed_closed = True

    # -- feeder
    async def run_recognizer(self) -> None:
        """Create the recogniser, feed it batches, then decode; all in the executor."""
        run = self.loop.run_in_executor
        rec: Recognizer = await run(
            self.executor, self.engine.recognizer, _choices(self.request), self.request.language
        )
        while (batch := await self.feed.get()) is not None:
            await run(self.executor, rec.accept, batch)
        heard: Recognition = await run(self.executor, rec.result)
        if heard.choice is None:
            self.finish(Heard("no_match", heard.text, confidence=heard.confidence))
        else:
            self.finish(Heard("speech", heard.text, heard.choice, heard.confidence))


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
) -> Heard:
    """Play ``request.prompts`` on ``session`` while listening; return what was heard.

    Raises :class:`CallHangup` when the caller hangs up (hangup frame or EOF) and
    :class:`AudioSocketError` for prompts that cannot be streamed. The session is always
    closed on return (hangup frame first, so Asterisk's ``AudioSocket()`` returns).
    ``vad_config`` tunes the VAD; ``request.min_speech_ms`` only decides barge-in.
    """
    loop = asyncio.get_running_loop()
    config = vad_config or VadConfig()
    tasks: list[asyncio.Task[None]] = []
    try:
        prompt = await loop.run_in_executor(
            executor, load_prompt_audio, request.prompts, prompts_dir
        )
        state = _Listener(session, request, engine, executor, prompt, config, batch_ms, preroll_ms)
        for coro in (state.play(), state.hear(), state.run_recognizer()):
            tasks.append(asyncio.create_task(state.guard(coro)))
        heard = await state.result
        logger.info(
            "[%s] heard %s after %d of %d ms of prompt (confidence %.2f; late re-anchors %d, "
            "worst %.1f ms)", session.uuid, heard.kind, heard.prompt_played_ms,
            len(prompt) // _BYTES_PER_MS, heard.confidence, state.late_reanchors,
            state.max_late_ms,
        )  # fmt: skip
        return heard
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
