"""Turn-taking for a speech menu, sans-IO: timed audio and key events in, decisions out.

A :class:`Turn` is one caller turn: a prompt plays while the caller may speak or press a key.
It owns every decision of :func:`ivr.speech.listen.listen` and nothing else: no sockets, no
tasks, no clock. The driver feeds it what happened with the time it happened (any monotonic
clock in seconds: the loop clock in production, a plain number in tests):

- :meth:`Turn.next_frame` -- the 20 ms frame to play now (prompt, then silence);
- :meth:`Turn.audio` -- a caller frame arrived;
- :meth:`Turn.dtmf` -- a key arrived;
- :meth:`Turn.tick` -- time passed (the player calls it once a frame);
- :meth:`Turn.recognised` -- the recogniser's answer for the utterance it was given.

Each returns the decisions it led to, in order: :class:`StopPrompt` (barge-in),
:class:`Feed` (audio for the recogniser), :class:`EndSpeech` (the utterance is over: decode)
and :class:`Done` (the turn's result). After :class:`Done` the turn ignores everything.

The rules: with ``barge_in`` the prompt stops once speech has lasted ``min_speech_ms`` of voiced
time, or at a key; shorter sounds over the prompt (a cough) are forgotten. After the prompt any
speech the VAD finds counts, so a short "yes" is heard. The recogniser hears one utterance: a
pre-roll before the VAD's start plus the speech up to its end, or up to ``max_speech_s``.
Without ``barge_in`` caller audio and keys during the prompt are ignored (the VAD still
learns the line's noise floor) and a fresh VAD starts when the prompt ends. No input: nothing
heard ``no_input_timeout_s`` after the prompt ended, unless speech is under way or being
decoded. A line that sends no frames for ``QUIET_LINE_S`` is heard as silence.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, replace

from ivr.asterisk.audiosocket.vad import SpeechEnd, SpeechStart, Vad, VadConfig
from ivr.call.channel import DTMF_DIGITS, Heard, ListenRequest
from ivr.speech.base import Recognition
from ivr.speech.decision import Verdict

__all__ = [
    "FRAME_BYTES",
    "FRAME_MS",
    "QUIET_LINE_S",
    "Decision",
    "Done",
    "EndSpeech",
    "Feed",
    "StopPrompt",
    "Turn",
]

FRAME_MS = 20
FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit mono
BYTES_PER_MS = FRAME_BYTES // FRAME_MS
SILENCE = bytes(FRAME_BYTES)
QUIET_LINE_S = 0.2  # no caller frame for this long: the line is silent


@dataclass(frozen=True, slots=True)
class StopPrompt:
    """The caller barged in: the prompt stops (silence plays from now on)."""

    at: float


@dataclass(frozen=True, slots=True)
class Feed:
    """Audio for the recogniser (pre-roll and confirmed speech, in batches)."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class EndSpeech:
    """The utterance is over (silence after it, or ``max_speech_s``): decode it."""

    at: float
    cut: bool  # True: ended by max_speech_s


@dataclass(frozen=True, slots=True)
class Done:
    """The turn's result."""

    heard: Heard
    at: float


Decision = StopPrompt | Feed | EndSpeech | Done


class Turn:
    """One caller turn; see the module docstring."""

    def __init__(
        self,
        request: ListenRequest,
        prompt: bytes,
        now: float,
        *,
        vad_config: VadConfig | None = None,
        batch_ms: int = 100,
        preroll_ms: int = 300,
    ) -> None:
        self.request = request
        self.prompt = prompt
        self.sent_prompt = 0  # bytes of prompt played
        self.prompt_stopped = not prompt
        self.prompt_end: float | None = now if not prompt else None
        self.vad_config = vad_config or VadConfig()
        self.vad = Vad(self.vad_config)
        self.batch_bytes = batch_ms * BYTES_PER_MS
        cfg = self.vad_config
        self.preroll: collections.deque[bytes] = collections.deque(
            maxlen=(preroll_ms + cfg.min_speech_ms + cfg.max_gap_ms) // FRAME_MS + 1
        )
        self.vad_open = request.barge_in  # without barge-in: a fresh VAD once the prompt ends
        self.in_utterance = False  # the VAD hears speech
        self.confirmed = False  # ... long enough to barge in (or the prompt is over)
        self.pending = bytearray()  # pre-roll and speech not confirmed yet
        self.utterance_start_ms = 0
        self.speech_ended = False  # EndSpeech given: the recogniser has it all
        self.batch = bytearray()
        self.heard: Heard | None = None
        self.heard_until = now  # caller audio accounted for up to here
        self._out: list[Decision] = []

    # -- state the driver may read
    @property
    def done(self) -> bool:
        return self.heard is not None

    @property
    def prompt_played_ms(self) -> int:
        return self.sent_prompt // BYTES_PER_MS

    @property
    def listening(self) -> bool:
        """Caller input counts (always with barge-in, else only after the prompt)."""
        return self.request.barge_in or self.prompt_stopped

    # -- inputs
    def next_frame(self, now: float) -> bytes:
        """The frame to play at ``now``: the prompt's next 20 ms, or silence."""
        if self.prompt_stopped:
            return SILENCE
        chunk = self.prompt[self.sent_prompt : self.sent_prompt + FRAME_BYTES]
        self.sent_prompt += len(chunk)
        if self.sent_prompt >= len(self.prompt):
            self.prompt_stopped = True  # played to the end: no StopPrompt, nothing to stop
            self.prompt_end = now
        return chunk.ljust(FRAME_BYTES, b"\0")

    def audio(self, pcm: bytes, now: float) -> list[Decision]:
        """A caller frame arrived at ``now``."""
        self.heard_until = max(self.heard_until, now)
        self._on_audio(pcm, now)
        return self._take()

    def dtmf(self, digit: str, now: float) -> list[Decision]:
        """A key arrived at ``now``."""
        if self.request.dtmf and digit in DTMF_DIGITS and self.listening and not self.done:
            self._stop_prompt(now)
            self._finish(Heard("dtmf", digit, choice=digit), now)
        return self._take()

    def tick(self, now: float) -> list[Decision]:
        """Time passed: fill a quiet line with silence, and decide no-input."""
        if now - self.heard_until > QUIET_LINE_S:
            # A phone that stops sending RTP (silence suppression, a stream that ended) makes
            # Asterisk send nothing: hear the gap as silence, so an utterance still ends.
            while self.heard_until < now:
                self.heard_until += FRAME_MS / 1000
                self._on_audio(SILENCE, now)
        waiting = not (self.in_utterance or self.confirmed)  # else a result will come
        end = self.prompt_end
        if waiting and end is not None and now - end >= self.request.no_input_timeout_s:
            self._finish(Heard("no_input"), now)
        return self._take()

    def recognised(
        self, result: Recognition, now: float, verdict: Verdict = "accept"
    ) -> list[Decision]:
        """The recogniser's answer for the utterance and what the menu makes of it
        (:func:`ivr.speech.decision.decide`): a rejected one is a no-match."""
        if result.choice is None or verdict == "reject":
            self._finish(Heard("no_match", result.text, confidence=result.confidence), now)
        else:
            confirm = verdict == "confirm"
            heard = Heard("speech", result.text, result.choice, result.confidence, confirm=confirm)
            self._finish(heard, now)
        return self._take()

    # -- internals
    def _take(self) -> list[Decision]:
        out, self._out = self._out, []
        return out

    def _finish(self, heard: Heard, now: float) -> None:
        if self.heard is None:
            self.heard = replace(heard, prompt_played_ms=self.prompt_played_ms)
            self._out.append(Done(self.heard, now))

    def _stop_prompt(self, now: float) -> None:
        if not self.prompt_stopped:
            self.prompt_stopped = True
            self.prompt_end = now
            self._out.append(StopPrompt(now))

    def _on_audio(self, pcm: bytes, now: float) -> None:
        if self.done or self.speech_ended:
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
                    self._confirm(now)
                    self._end_utterance(now, cut=False)
                else:  # a cough or click over the prompt: forget it, keep playing
                    self.in_utterance = False
                    self.pending.clear()
        long_enough = self.prompt_stopped or self.vad.voiced_ms >= self.request.min_speech_ms
        if self.in_utterance and not self.confirmed and long_enough:
            self._confirm(now)
        if self.in_utterance:
            spoken_ms = self.vad.position_ms - self.utterance_start_ms
            if spoken_ms >= 1000 * self.request.max_speech_s:
                self.vad.cut()
                self._end_utterance(now, cut=True)

    def _start_utterance(self, event: SpeechStart) -> None:
        self.in_utterance = True
        self.utterance_start_ms = event.start_ms
        self.pending = bytearray(b"".join(self.preroll))
        self.preroll.clear()

    def _confirm(self, now: float) -> None:
        """Speech long enough to count: barge in, and let the recogniser hear it all."""
        if self.confirmed:
            return
        self.confirmed = True
        self._stop_prompt(now)
        self._add_speech(bytes(self.pending))
        self.pending.clear()

    def _add_speech(self, pcm: bytes) -> None:
        if not self.confirmed:
            self.pending += pcm
            return
        self.batch += pcm
        if len(self.batch) >= self.batch_bytes:
            self._out.append(Feed(bytes(self.batch)))
            self.batch.clear()

    def _end_utterance(self, now: float, *, cut: bool) -> None:
        self.in_utterance = False
        if self.batch:
            self._out.append(Feed(bytes(self.batch)))
            self.batch.clear()
        self._out.append(EndSpeech(now, cut))
        self.speech_ended = True
