"""listen() over real TCP: a fake Asterisk streams the caller, a fake recogniser decodes.

These are the asyncio shell's tests: real-time pacing of the player, frames and keys reaching
the turn, decoding off the loop, hangups, closing. *When* the prompt stops, an utterance ends
or no-input comes is decided by :class:`ivr.speech.turns.Turn` and tested on virtual time in
``test_speech_turns.py``; here those are only checked for their outcome. Timing figures are
printed (``pytest -s``): frame pacing jitter and barge-in reaction time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import statistics
import threading
import time
import uuid
import wave
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.fake_audiosocket import FakeAudioSocket

from ivr.asterisk.audiosocket.protocol import Hangup
from ivr.asterisk.audiosocket.server import AudioSocketServer
from ivr.asterisk.audiosocket.vad import frame_level_dbfs
from ivr.call.channel import Heard, ListenRequest, Prompt
from ivr.errors import AudioSocketError, CallHangup, SpeechError
from ivr.prompts.tts import Pyttsx3Engine
from ivr.speech.base import Recognition, SpeechChoice, Thresholds
from ivr.speech.listen import listen

RATE = 8000
CHOICES = (("1", ("balance",)), ("2", ("lost card",)), ("3", ("agent",)))
TONE = Prompt("file", "tone", "a two second tone")
MENU = Prompt("tts", "tts/en/menu", "Say balance, lost card, or agent.")


# --------------------------------------------------------------------------- fakes
@dataclass
class FakeRecognizer:
    """Returns a fixed Recognition (or raises a SpeechError); records the threads and the
    audio it was given."""

    answer: Recognition | SpeechError
    delay_s: float = 0.0  # a slow decode
    threads: list[threading.Thread] = field(default_factory=list)
    accepted: int = 0
    accepting: threading.Event = field(default_factory=threading.Event)

    def accept(self, pcm: bytes) -> None:
        self.threads.append(threading.current_thread())
        self.accepted += len(pcm)
        self.accepting.set()

    def result(self) -> Recognition:
        self.threads.append(threading.current_thread())
        time.sleep(self.delay_s)  # blocking, as real decoders are: never on the loop
        if isinstance(self.answer, SpeechError):
            raise self.answer
        return self.answer


@dataclass
class FakeEngine:
    answer: Recognition | SpeechError
    delay_s: float = 0.0
    name: str = "fake"
    made: list[FakeRecognizer] = field(default_factory=list)
    choices: list[Sequence[SpeechChoice]] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    accepting: threading.Event = field(default_factory=threading.Event)  # speech was fed
    thresholds: Thresholds = field(default_factory=lambda: Thresholds(0.3, 0.5))

    def languages(self) -> frozenset[str]:
        return frozenset({"en"})

    def recognizer(self, choices: Sequence[SpeechChoice], language: str) -> FakeRecognizer:
        self.threads.append(threading.current_thread())
        self.choices.append(choices)
        rec = FakeRecognizer(self.answer, self.delay_s, accepting=self.accepting)
        self.made.append(rec)
        return rec


LOST_CARD = Recognition("lost card", "2", 0.9, "fake")


# --------------------------------------------------------------------------- fixtures
def _write(path: Path, samples: np.ndarray, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes())


def _tone(seconds: float, dbfs: float = -20.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.sqrt(2) * 32768 * 10 ** (dbfs / 20) * np.sin(2 * np.pi * hz * t + 0.3)


def _read(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


@pytest.fixture(scope="module")
def prompts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prompts")
    _write(root / "tone.wav", _tone(2.0))
    _write(root / "short.wav", _tone(1.0))
    _write(root / "wideband.wav", _tone(1.0), rate=16000)
    engine = Pyttsx3Engine()
    (root / "tts/en").mkdir(parents=True)
    engine.render("Say balance, lost card, or agent. You can also press a key.", "en",
                  root / "tts/en/menu.wav")  # fmt: skip
    (root / "caller").mkdir()
    engine.render("lost card", "en", root / "caller/lost_card.wav")
    engine.render("yes", "en", root / "caller/yes.wav")
    return root


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="decode") as pool:
        yield pool


@pytest.fixture
async def server() -> AsyncIterator[AudioSocketServer]:
    async with AudioSocketServer(port=0) as srv:
        yield srv


def request(**kw: object) -> ListenRequest:
    base: dict[str, object] = {"prompts": [TONE], "choices": CHOICES, "no_input_timeout_s": 1.0}
    base.update(kw)
    return ListenRequest(**base)  # type: ignore[arg-type]


async def start_call(
    server: AudioSocketServer,
    req: ListenRequest,
    engine: FakeEngine,
    prompts_dir: Path,
    executor: concurrent.futures.Executor,
    caller_pcm: bytes = b"",
    lead_s: float = 0.0,
) -> tuple[FakeAudioSocket, asyncio.Task[Heard]]:
    key = uuid.uuid4()
    fut = server.expect(key)
    caller = await FakeAudioSocket.connect("127.0.0.1", server.port, key)
    caller.start_streaming(caller_pcm, lead_s=lead_s)
    session = await asyncio.wait_for(fut, 2)
    task = asyncio.create_task(listen(session, req, engine, prompts_dir, executor))
    return caller, task


def gaps_ms(times: list[float]) -> list[float]:
    return [1000 * (b - a) for a, b in itertools.pairwise(times)]


def assert_paced(times: list[float], max_gap_ms: float) -> None:
    """Frames paced at 20 ms: the typical gap is 20 ms, ten frames never come in a burst, and
    no gap nears Asterisk's 2 s inactivity timer. The median, not the mean: the player
    re-anchors after a loop stall instead of bursting to catch up, so each stall of a loaded
    test machine lengthens the mean (21.3 ms was seen with ten sessions in one process)."""
    gaps = gaps_ms(times)
    assert statistics.median(gaps) == pytest.approx(20.0, abs=0.5)
    assert min(b - a for a, b in zip(times, times[10:], strict=False)) > 0.160
    assert max(gaps) < max_gap_ms


def speech_onset_s(pcm: bytes) -> float:
    for i in range(0, len(pcm), 320):
        if frame_level_dbfs(pcm[i : i + 320]) > -40:
            return i / 16000
    raise AssertionError("no speech in the caller audio")


# --------------------------------------------------------------------------- tests
async def test_pacing_prompt_then_silence_then_no_input(
    server: AudioSocketServer, prompts_dir: Path, executor: concurrent.futures.Executor
) -> None:
    engine = FakeEngine(LOST_CARD)
    caller, task = await start_call(server, request(), engine, prompts_dir, executor)
    heard = await asyncio.wait_for(task, 6)
    assert heard == Heard("no_input", prompt_played_ms=2000)
    await caller.wait_closed_by_server()
    assert caller.got_hangup  # AudioSocket() returns, the AGI script goes on
    prompt = _read(prompts_dir / "tone.wav")
    assert caller.prompt_frames(prompt) == 100
    times = [t for t, _ in caller.audio_frames()]
    gaps = gaps_ms(times)
    prompt_span = times[99] - times[0]
    assert prompt_span == pytest.approx(1.98, abs=0.05)  # real time, not a burst
    assert_paced(times, max_gap_ms=80)
    silence = caller.audio_frames()[100:]
    assert silence and all(pcm == bytes(320) for _, pcm in silence)
    jitter, mean = statistics.pstdev(gaps), statistics.mean(gaps)
    print(f"\npacing: {len(times)} frames, mean {mean:.2f} ms, jitter (sd) {jitter:.2f} ms, "
          f"min {min(gaps):.1f} ms, max {max(gaps):.1f} ms")  # fmt: skip
    assert engine.made and engine.made[0].accepted == 0  # nothing to decode
    await caller.close()


async def test_speech_barges_in_and_is_decoded_off_the_loop(
    server: AudioSocketServer, prompts_dir: Path, executor: concurrent.futures.Executor
) -> None:
    engine = FakeEngine(LOST_CARD)
    speech = _read(prompts_dir / "caller/lost_card.wav")
    prompt = _read(prompts_dir / "tts/en/menu.wav")
    req = request(prompts=[MENU], min_speech_ms=300)
    caller, task = await start_call(server, req, engine, prompts_dir, executor, speech, lead_s=1.0)
    heard = await asyncio.wait_for(task, 8)
    assert (heard.kind, heard.value, heard.choice, heard.confidence) == (
        "speech", "lost card", "2", 0.9
    )  # fmt: skip
    onset = caller.time_of_offset(0, lead_s=1.0) + speech_onset_s(speech)
    played = caller.prompt_frames(prompt)
    assert played * 320 < len(prompt) - 16000  # stopped at least a second early
    stop_t = caller.audio_frames()[played][0]
    reaction_ms = 1000 * (stop_t - onset) - 300  # beyond the 300 ms of speech required
    print(f"\nbarge-in: prompt stopped {reaction_ms:.0f} ms after 300 ms of speech "
          f"(prompt_played_ms={heard.prompt_played_ms})")  # fmt: skip
    assert heard.prompt_played_ms == pytest.approx(played * 20, abs=20)
    # Silence keeps flowing after barge-in until the result; then a hangup frame.
    assert all(pcm == bytes(320) for _, pcm in caller.audio_frames()[played:])
    await caller.wait_closed_by_server()
    assert caller.got_hangup
    rec = engine.made[0]
    main = threading.main_thread()
    assert rec.threads and all(t is not main for t in rec.threads + engine.threads)
    assert rec.accepted >= len(speech) - 16000 * 0.4  # the whole utterance (+ pre-roll)
    assert engine.choices[0][1] == SpeechChoice("2", ("lost card",))
    await caller.close()


async def test_dtmf_barges_in_at_once(
    server: AudioSocketServer, prompts_dir: Path, executor: concurrent.futures.Executor
) -> None:
    engine = FakeEngine(LOST_CARD)
    caller, task = await start_call(server, request(), engine, prompts_dir, executor)
    sent = asyncio.get_running_loop().time()
    await caller.send_dtmf("5")
    heard = await asyncio.wait_for(task, 4)
    assert heard.kind == "dtmf" and heard.value == "5" and heard.choice == "5"
    assert heard.prompt_played_ms < 2000  # the key cut the prompt
    await caller.wait_closed_by_server()
    played = caller.prompt_frames(_read(prompts_dir / "tone.wav"))
    assert played == heard.prompt_played_ms // 20
    # The key ends the listen, then the hangup frame (when: test_speech_turns.py).
    after = [t for t, _ in caller.audio_frames() if t > sent]
    hangup_t = next(r.t for r in caller.received if isinstance(r.event, Hangup))
    print(f"\nDTMF barge-in: {len(after)} frame(s) after the key, hangup frame "
          f"{1000 * (hangup_t - sent):.1f} ms after it")  # fmt: skip
    assert all(rec.accepted == 0 for rec in engine.made)  # (the key may beat its creation)
    await caller.close()


async def test_no_match(
    server: AudioSocketServer, prompts_dir: Path, executor: concurrent.futures.Executor
) -> None:
    engine = FakeEngine(Recognition("pizza", None, 0.2, "fake"))
    speech = _read(prompts_dir / "caller/lost_card.wav")
    req = request(prompts=[Prompt("file", "short")])
    caller, task = await start_call(server, req, engine, prompts_dir, executor, speech, lead_s=1.2)
    heard = await asyncio.wait_for(task, 6)
    assert heard == Heard("no_match", "pizza", confidence=0.2, prompt_played_ms=1000)
    await caller.close()


@pytest.mark.parametrize(
    ("confidence", "overrides", "want"),
    [
        (0.4, {}, ("speech", True)),  # between the engine's 0.3 and 0.5: confirm
        (0.6, {}, ("speech", False)),
        (0.2, {}, ("no_match", False)),  # a choice, but too unsure: rejected
        (0.6, {"min_confidence": 0.7}, ("no_match", False)),  # the menu's own threshold
        (0.6, {"confirm": "always"}, ("speech", True)),
        (0.4, {"confirm": "never"}, ("speech", False)),
        (0.4, {"accept_confidence": 0.35}, ("speech", False)),
    ],
)
async def test_the_menu_accepts_confirms_or_rejects_by_confidence(
    confidence: float,
    overrides: dict[str, Any],
    want: tuple[str, bool],
    server: AudioSocketServer,
    prompts_dir: Path,
    executor: concurrent.futures.Executor,
) -> None:
    engine = FakeEngine(Recognition("lost card", "2", confidence, "fake"))
    speech = _read(prompts_dir / "caller/lost_card.wav")
    req = replace(request(prompts=[Prompt("file", "short")]), **overrides)
    caller, task = await start_call(server, req, engine, prompts_dir, executor, speech, lead_s=1.2)
    heard = await asyncio.wait_for(task, 6)
    assert (heard.kind, heard.confirm) == want
    assert heard.choice == ("2" if want[0] == "speech" else None)
    assert heard.confidence == confidence
    await caller.close()


async def test_a_slow_decode_is_awaited_not_turned_into_no_input(
    server: AudioSocketServer, prompts_dir: Path, executor: concurrent.futures.Executor
) -> None:
    engine = FakeEngine(LOST_CARD, delay_s=1.0)
    speech = _read(prompts_dir / "caller/lost_card.wav")
    req = request(no_input_timeout_s=0.3)
    caller, task = await start_call(server, req, engine, prompts_dir, executor, speech, lead_s=0.5)
    heard = await asyncio.wait_for(task, 6)
    assert heard.kind == "speech" and heard.choice == "2"
    gaps = gaps_ms([t for t, _ in caller.audio_frames()])
    assert max(gaps) < 80  # the line stayed alive while decoding
    await caller.close()


async def test_short_yes_after_the_prompt_is_heard(
    server: AudioSocketServer, prompts_dir: Path, executor: concurrent.futures.Executor
) -> None:
    """Barge-in wants 300 ms of speech; after the prompt, a short word still counts."""
    engine = FakeEngine(Recognition("yes", "1", 0.8, "fake"))
    yes = _read(prompts_dir / "caller/yes.wav")
    req = request(prompts=[Prompt("file", "short")], choices=(("1", ("yes",)),))
    caller, task = await start_call(server, req, engine, prompts_dir, executor, yes, lead_s=1.3)
    heard = await asyncio.wait_for(task, 6)
    assert heard.kind == "speech" and heard.choice == "1"
    await caller.close()


@pytest.mark.parametrize("how", ["hangup frame", "EOF"])
async def test_caller_hangs_up_mid_utterance(
    how: str,
    server: AudioSocketServer,
    prompts_dir: Path,
    executor: concurrent.futures.Executor,
) -> None:
    speech = _read(prompts_dir / "caller/lost_card.wav")
    engine = FakeEngine(LOST_CARD)
    caller, task = await start_call(
        server, request(), engine, prompts_dir, executor, speech, lead_s=0.5
    )
    assert await asyncio.to_thread(engine.accepting.wait, 5)  # speech under way, being fed
    if how == "EOF":
        await caller.close()
    else:
        await caller.send_hangup()
    with pytest.raises(CallHangup):
        await asyncio.wait_for(task, 3)
    await caller.close()


async def test_without_barge_in_the_whole_prompt_plays(
    server: AudioSocketServer, prompts_dir: Path, executor: concurrent.futures.Executor
) -> None:
    engine = FakeEngine(LOST_CARD)
    speech = _read(prompts_dir / "caller/lost_card.wav")
    req = request(barge_in=False, no_input_timeout_s=0.6)
    caller, task = await start_call(server, req, engine, prompts_dir, executor, speech, lead_s=0.3)
    await caller.send_dtmf("9")  # ignored too, as STREAM FILE without escape digits
    heard = await asyncio.wait_for(task, 6)
    assert heard == Heard("no_input", prompt_played_ms=2000)
    assert caller.prompt_frames(_read(prompts_dir / "tone.wav")) == 100
    await caller.close()


async def test_a_failing_recogniser_is_heard_as_no_match(
    server: AudioSocketServer,
    prompts_dir: Path,
    executor: concurrent.futures.Executor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A decoding worker that died or hung fails one answer: the menu's "not understood"
    retry follows, the call goes on."""
    engine = FakeEngine(SpeechError("a pocketsphinx worker process died while decoding"))
    speech = _read(prompts_dir / "caller/lost_card.wav")
    caller, task = await start_call(
        server, request(), engine, prompts_dir, executor, speech, lead_s=0.5
    )
    heard = await asyncio.wait_for(task, 6)
    assert (heard.kind, heard.choice, heard.confidence) == ("no_match", None, 0.0)
    assert "recogniser failed, heard as no match: a pocketsphinx worker" in caplog.text
    await caller.wait_closed_by_server()
    assert caller.got_hangup  # the session ends normally: AudioSocket() returns to the AGI
    await caller.close()


async def test_speech_longer_than_max_speech_is_cut_and_decoded(
    server: AudioSocketServer, prompts_dir: Path, executor: concurrent.futures.Executor
) -> None:
    engine = FakeEngine(LOST_CARD)
    endless = np.clip(_tone(8.0, -18, 300), -32768, 32767).astype("<i2").tobytes()
    req = request(prompts=[Prompt("file", "short")], max_speech_s=1.0)
    caller, task = await start_call(server, req, engine, prompts_dir, executor, endless, 0.4)
    heard = await asyncio.wait_for(task, 6)
    assert heard.kind == "speech" and heard.prompt_played_ms < 1000
    assert 16000 * 1.0 <= engine.made[0].accepted <= 16000 * 1.5
    await caller.close()


async def test_ten_concurrent_sessions(
    server: AudioSocketServer, prompts_dir: Path, executor: concurrent.futures.Executor
) -> None:
    speech = _read(prompts_dir / "caller/lost_card.wav")
    engines = [FakeEngine(Recognition(f"option {i}", str(i), 0.5, "fake")) for i in range(10)]
    calls = []
    for i, engine in enumerate(engines):
        pcm = speech if i % 2 == 0 else b""
        calls.append(await start_call(server, request(), engine, prompts_dir, executor, pcm, 0.8))
    results = await asyncio.wait_for(asyncio.gather(*(task for _, task in calls)), 10)
    for i, ((caller, _), heard) in enumerate(zip(calls, results, strict=True)):
        if i % 2 == 0:
            assert (heard.kind, heard.choice) == ("speech", str(i))
        else:
            assert heard == Heard("no_input", prompt_played_ms=2000)
        # one late wakeup on a loaded 2-core machine was seen at 100.8 ms
        assert_paced([t for t, _ in caller.audio_frames()], max_gap_ms=250)
        await caller.wait_closed_by_server()
        assert caller.got_hangup
        await caller.close()
    assert server.active_sessions == 0


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (Prompt("sound", "hello-world"), "kind 'sound'"),
        (Prompt("file", "wideband"), "16000 Hz, 16-bit, 1 channel"),
        (Prompt("tts", "tts/en/missing"), "not found"),
        (Prompt("file", "../../etc/passwd"), "outside"),
    ],
)
async def test_prompts_that_cannot_stream_fail_clearly_and_close(
    prompt: Prompt,
    message: str,
    server: AudioSocketServer,
    prompts_dir: Path,
    executor: concurrent.futures.Executor,
) -> None:
    caller, task = await start_call(
        server, request(prompts=[prompt]), FakeEngine(LOST_CARD), prompts_dir, executor
    )
    with pytest.raises(AudioSocketError, match=message):
        await asyncio.wait_for(task, 3)
    await caller.wait_closed_by_server()
    assert caller.got_hangup
    await caller.close()
