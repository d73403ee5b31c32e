"""Turn-taking (barge-in, end of utterance, no input, keys) on virtual time: no sockets, no sleeps.

A small simulator plays the part of :func:`ivr.speech.listen.listen`: every 20 ms of virtual
time it takes the turn's next frame and ticks it, then hands it the caller's frame and any
key due, and answers an :class:`EndSpeech` with the recogniser's result ``decode_s`` later.
Each case is a caller (tones stand in for speech, zeros for a quiet line) and what the turn
must decide, and when.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from ivr.call.channel import Heard, ListenRequest, Prompt
from ivr.speech.base import Recognition
from ivr.speech.turns import (
    FRAME_BYTES,
    FRAME_MS,
    QUIET_LINE_S,
    Decision,
    Done,
    EndSpeech,
    Feed,
    StopPrompt,
    Turn,
)

RATE = 8000
STEP = FRAME_MS / 1000
BYTES_PER_S = 2 * RATE
LOST_CARD = Recognition("lost card", "2", 0.9, "fake")
PIZZA = Recognition("pizza", None, 0.2, "fake")
TICK = STEP / 2  # decisions land on the 20 ms grid: half a frame of slack for float sums


def tone_pcm(seconds: float, dbfs: float = -20.0, hz: float = 440.0) -> bytes:
    t = np.arange(round(seconds * RATE)) / RATE
    samples = np.sqrt(2) * 32768 * 10 ** (dbfs / 20) * np.sin(2 * np.pi * hz * t)
    return bytes(np.round(samples).astype("<i2").tobytes())


@dataclass
class Caller:
    """What the caller does: ``speech`` as (start_s, end_s) tones, ``keys`` as (at_s, digit);
    after ``stops_sending_at`` no frame comes at all (silence suppression, a dead stream)."""

    speech: list[tuple[float, float]] = field(default_factory=list)
    keys: list[tuple[float, str]] = field(default_factory=list)
    stops_sending_at: float | None = None
    answer: Recognition = LOST_CARD
    decode_s: float = 0.1

    def frame(self, t: float) -> bytes | None:
        if self.stops_sending_at is not None and t >= self.stops_sending_at - TICK:
            return None
        for start, end in self.speech:
            if start - TICK <= t < end - TICK:
                offset = round((t - start) / STEP)
                pcm = tone_pcm(end - start)
                return pcm[offset * FRAME_BYTES : (offset + 1) * FRAME_BYTES].ljust(
                    FRAME_BYTES, b"\0"
                )
        return bytes(FRAME_BYTES)


@dataclass
class Run:
    """What the turn decided, with the virtual time of each decision."""

    decisions: list[Decision]
    fed: int  # bytes given to the recogniser
    fed_after_end: int  # ... after EndSpeech (must be 0)
    frames_played: int

    def first(self, kind: type) -> Decision | None:
        return next((d for d in self.decisions if isinstance(d, kind)), None)

    @property
    def done(self) -> Done:
        done = self.first(Done)
        assert isinstance(done, Done), self.decisions
        return done


def simulate(
    req: ListenRequest, caller: Caller, prompt_s: float = 2.0, limit_s: float = 20.0
) -> Run:
    turn = Turn(req, tone_pcm(prompt_s, -25.0, 300.0) if prompt_s else b"", 0.0)
    decisions: list[Decision] = []
    decode_at: float | None = None
    keys = sorted(caller.keys)
    played = 0
    for i in range(round(limit_s / STEP)):
        t = i * STEP
        out: list[Decision] = []
        turn.next_frame(t)
        played += 1
        out += turn.tick(t)
        pcm = caller.frame(t)
        if pcm is not None:
            out += turn.audio(pcm, t)
        while keys and keys[0][0] <= t + TICK:
            out += turn.dtmf(keys.pop(0)[1], t)
        if decode_at is not None and t >= decode_at - TICK:
            out += turn.recognised(caller.answer, t)
            decode_at = None
        for decision in out:
            if isinstance(decision, EndSpeech):
                decode_at = t + caller.decode_s
        decisions += out
        if turn.done:
            break
    end = next((i for i, d in enumerate(decisions) if isinstance(d, EndSpeech)), len(decisions))
    fed = sum(len(d.pcm) for d in decisions if isinstance(d, Feed))
    after = sum(len(d.pcm) for d in decisions[end:] if isinstance(d, Feed))
    return Run(decisions, fed, after, played)


def request(**kw: object) -> ListenRequest:
    base: dict[str, object] = {
        "prompts": [Prompt("file", "tone")],
        "choices": (("1", ("balance",)), ("2", ("lost card",))),
        "no_input_timeout_s": 1.0,
        "min_speech_ms": 300,
    }
    base.update(kw)
    return ListenRequest(**base)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    name: str
    req: ListenRequest
    caller: Caller
    prompt_s: float
    heard: Heard  # the result, prompt_played_ms included
    done_at: float
    stop_at: float | None = None  # barge-in (StopPrompt) time; None: the prompt was not cut
    end_at: float | None = None  # EndSpeech time; None: no utterance went to the recogniser
    cut: bool = False


# The prompt's last frame goes out at 1.98 s (2 s prompt), so no-input comes at 1.98 + timeout.
# Barge-in: the VAD's voiced time reaches min_speech_ms=300 on the frame at onset + 0.28 s.
# End of utterance: the VAD's 700 ms hangover after the speech ends, on the frame at end + 0.68 s
# (a line that stops sending is filled with silence every QUIET_LINE_S, so up to 0.2 s later);
# the recogniser answers decode_s=0.1 s after that.
CASES = [
    Case("silence: no input after the prompt", request(), Caller(), 2.0,
         Heard("no_input", prompt_played_ms=2000), done_at=2.98),
    Case("no prompt: the no-input timer starts at once", request(), Caller(), 0.0,
         Heard("no_input"), done_at=1.0),
    Case("speech over the prompt barges in after min_speech_ms", request(),
         Caller(speech=[(0.5, 1.5)]), 2.0,
         Heard("speech", "lost card", "2", 0.9, prompt_played_ms=800),
         done_at=2.28, stop_at=0.78, end_at=2.18),
    Case("min_speech_ms=100 barges in sooner", request(min_speech_ms=100),
         Caller(speech=[(0.5, 1.5)]), 2.0,
         Heard("speech", "lost card", "2", 0.9, prompt_played_ms=600),
         done_at=2.28, stop_at=0.58, end_at=2.18),
    Case("a cough over the prompt is forgotten", request(),
         Caller(speech=[(0.6, 0.76)]), 2.0,
         Heard("no_input", prompt_played_ms=2000), done_at=2.98),
    Case("a short word after the prompt counts", request(),
         Caller(speech=[(1.3, 1.5)]), 1.0,
         Heard("speech", "lost card", "2", 0.9, prompt_played_ms=1000),
         done_at=2.28, end_at=2.18),
    Case("no match is the recogniser's answer", request(),
         Caller(speech=[(1.3, 1.5)], answer=PIZZA), 1.0,
         Heard("no_match", "pizza", confidence=0.2, prompt_played_ms=1000),
         done_at=2.28, end_at=2.18),
    Case("a slow decode is awaited, not turned into no input", request(no_input_timeout_s=0.3),
         Caller(speech=[(0.5, 1.5)], decode_s=1.0), 2.0,
         Heard("speech", "lost card", "2", 0.9, prompt_played_ms=800),
         done_at=3.18, stop_at=0.78, end_at=2.18),
    Case("max_speech_s cuts endless speech and decodes it", request(max_speech_s=1.0),
         Caller(speech=[(0.4, 8.0)]), 1.0,
         Heard("speech", "lost card", "2", 0.9, prompt_played_ms=700),
         done_at=1.48, stop_at=0.68, end_at=1.38, cut=True),
    Case("a key barges in at once", request(), Caller(keys=[(0.5, "5")]), 2.0,
         Heard("dtmf", "5", "5", prompt_played_ms=520), done_at=0.5, stop_at=0.5),
    Case("a key after the prompt ends the turn", request(), Caller(keys=[(2.5, "#")]), 2.0,
         Heard("dtmf", "#", "#", prompt_played_ms=2000), done_at=2.5),
    Case("a key during speech wins over the recogniser", request(),
         Caller(speech=[(0.5, 2.0)], keys=[(1.2, "3")]), 2.0,
         Heard("dtmf", "3", "3", prompt_played_ms=800), done_at=1.2, stop_at=0.78),
    Case("keys are ignored when dtmf is off", request(dtmf=False, no_input_timeout_s=0.5),
         Caller(keys=[(0.3, "1")]), 1.0,
         Heard("no_input", prompt_played_ms=1000), done_at=1.48),
    Case("a key that is no DTMF digit is ignored", request(), Caller(keys=[(0.3, "x")]), 1.0,
         Heard("no_input", prompt_played_ms=1000), done_at=1.98),
    Case("without barge-in, speech and keys over the prompt are ignored",
         request(barge_in=False, no_input_timeout_s=0.6),
         Caller(speech=[(0.3, 1.5)], keys=[(0.8, "9")]), 2.0,
         Heard("no_input", prompt_played_ms=2000), done_at=2.58),
    Case("without barge-in, speech going on after the prompt is heard",
         request(barge_in=False), Caller(speech=[(1.0, 3.0)]), 2.0,
         Heard("speech", "lost card", "2", 0.9, prompt_played_ms=2000),
         done_at=3.78, end_at=3.68),
    Case("a line that stops sending still ends the utterance", request(),
         Caller(speech=[(0.5, 1.5)], stops_sending_at=1.5), 2.0,
         Heard("speech", "lost card", "2", 0.9, prompt_played_ms=800),
         done_at=2.46, stop_at=0.78, end_at=2.36),
    Case("a line silent from the start still times out", request(),
         Caller(stops_sending_at=0.0), 2.0,
         Heard("no_input", prompt_played_ms=2000), done_at=2.98),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_turn_decisions_on_virtual_time(case: Case) -> None:
    run = simulate(case.req, case.caller, case.prompt_s)
    assert run.done.heard == case.heard
    assert run.done.at == pytest.approx(case.done_at, abs=TICK)
    assert [d for d in run.decisions if isinstance(d, Done)] == [run.done]  # one result
    stop = run.first(StopPrompt)
    if case.stop_at is None:
        assert stop is None
    else:
        assert isinstance(stop, StopPrompt) and stop.at == pytest.approx(case.stop_at, abs=TICK)
    end = run.first(EndSpeech)
    if case.end_at is None:
        assert end is None
        if case.stop_at is None:
            assert run.fed == 0  # nothing counted: the recogniser heard nothing
    else:
        assert isinstance(end, EndSpeech) and end.at == pytest.approx(case.end_at, abs=TICK)
        assert end.cut == case.cut
        assert run.fed_after_end == 0


def test_the_recogniser_hears_the_preroll_and_the_whole_utterance() -> None:
    run = simulate(request(), Caller(speech=[(0.5, 1.5)]), 2.0)
    # pre-roll (300 ms + the VAD's start window) + 1 s of speech + the 700 ms hangover
    assert BYTES_PER_S * (0.3 + 1.0 + 0.7) <= run.fed <= BYTES_PER_S * (0.6 + 1.0 + 0.72)
    feeds = [d for d in run.decisions if isinstance(d, Feed)]
    assert all(len(f.pcm) % FRAME_BYTES == 0 for f in feeds)
    assert all(len(f.pcm) >= 100 * 16 for f in feeds[1:-1])  # batches of batch_ms=100


def test_max_speech_feeds_about_max_speech_s_of_audio() -> None:
    run = simulate(request(max_speech_s=1.0), Caller(speech=[(0.4, 8.0)]), 1.0)
    assert BYTES_PER_S * 1.0 <= run.fed <= BYTES_PER_S * 1.5


def test_nothing_counts_after_the_result() -> None:
    turn = Turn(request(), b"", 0.0)
    [done] = turn.dtmf("1", 0.1)
    assert isinstance(done, Done)
    assert turn.dtmf("2", 0.2) == []
    assert turn.audio(tone_pcm(0.02), 0.3) == []
    assert turn.tick(10.0) == []
    assert turn.recognised(LOST_CARD, 10.0) == []
    assert turn.heard == Heard("dtmf", "1", "1")


def test_the_prompt_then_silence() -> None:
    prompt = tone_pcm(0.05)  # two and a half frames
    turn = Turn(request(), prompt, 0.0)
    frames = [turn.next_frame(i * STEP) for i in range(5)]
    assert frames[0] == prompt[:FRAME_BYTES] and frames[1] == prompt[FRAME_BYTES : 2 * FRAME_BYTES]
    assert frames[2] == prompt[2 * FRAME_BYTES :].ljust(FRAME_BYTES, b"\0")  # padded
    assert frames[3] == frames[4] == bytes(FRAME_BYTES)
    assert turn.prompt_played_ms == 50 and turn.prompt_end == pytest.approx(0.04)


def test_a_quiet_line_is_filled_with_silence_in_real_time() -> None:
    turn = Turn(request(no_input_timeout_s=100.0), b"", 0.0)
    turn.audio(bytes(FRAME_BYTES), 0.0)
    turn.tick(QUIET_LINE_S)  # not yet: exactly the quiet-line gap
    assert turn.vad.position_ms == 20
    turn.tick(1.0)
    assert turn.vad.position_ms == pytest.approx(1000, abs=40)  # the gap, heard as silence
