"""Kept utterances (``speech.keep_utterances``, :mod:`ivr.speech.keep`): a live listen over
real TCP (the fake Asterisk of ``support.fake_audiosocket``) saves exactly the audio its
recogniser was fed, with a sidecar of what the menu made of it; retention removes old ones."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shlex
import stat
import threading
import uuid
import wave
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from support.fake_audiosocket import FakeAudioSocket

from ivr.asterisk.audiosocket.server import AudioSocketServer
from ivr.call.channel import ListenRequest, Prompt
from ivr.cli import main
from ivr.config import load_settings
from ivr.speech.base import Recognition, SpeechChoice, Thresholds
from ivr.speech.decision import decide
from ivr.speech.keep import DAY_S, KeptUtterance, UtteranceKeeper
from ivr.speech.listen import listen
from ivr.speech.pocketsphinx import PocketsphinxEngine

RATE = 8000
CHOICES = (("1", ("sales",)), ("2", ("support",)))
NOW = 1_700_000_000.0  # the injected clock: 2023-11-14T22:13:20Z


@dataclass
class Recorder:
    """A recogniser that keeps every byte ``accept`` was given."""

    answer: Recognition
    fed: bytearray = field(default_factory=bytearray)
    thread: list[threading.Thread] = field(default_factory=list)

    def accept(self, pcm: bytes) -> None:
        self.fed += pcm

    def result(self) -> Recognition:
        return self.answer


@dataclass
class RecorderEngine:
    answer: Recognition
    name: str = "recorder"
    thresholds: Thresholds = field(default_factory=lambda: Thresholds(0.4, 0.8))
    made: list[Recorder] = field(default_factory=list)

    def languages(self) -> frozenset[str]:
        return frozenset({"en"})

    def recognizer(self, choices: Sequence[SpeechChoice], language: str) -> Recorder:
        rec = Recorder(self.answer)
        self.made.append(rec)
        return rec


def _wav(path: Path, pcm: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)


def _voice(seconds: float) -> bytes:
    """A vowel-like sound: a 150 Hz buzz with harmonics, loud enough for the VAD."""
    t = np.arange(int(seconds * RATE)) / RATE
    wave_ = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    return np.round(6000 * wave_ / 2).astype("<i2").tobytes()


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    _wav(tmp_path / "prompts" / "short.wav", bytes(2 * RATE // 2))  # 0.5 s of silence
    return tmp_path / "prompts"


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        yield pool


@pytest.fixture
async def server() -> AsyncIterator[AudioSocketServer]:
    async with AudioSocketServer(port=0) as srv:
        yield srv


async def test_a_live_utterance_is_kept_as_fed_with_its_sidecar(
    server: AudioSocketServer,
    prompts_dir: Path,
    executor: concurrent.futures.Executor,
    tmp_path: Path,
) -> None:
    engine = RecorderEngine(Recognition("support", "2", 0.62, "recorder"))
    keeper = UtteranceKeeper(tmp_path / "recordings", 90, clock=lambda: NOW)
    saved: list[concurrent.futures.Future[Path | None]] = []
    req = ListenRequest(
        prompts=[Prompt("file", "short")],
        choices=CHOICES,
        no_input_timeout_s=2.0,
        flow="voice",
        node="menu",
    )
    key = uuid.uuid4()
    expected = server.expect(key)
    caller = await FakeAudioSocket.connect("127.0.0.1", server.port, key)
    caller.start_streaming(_voice(0.6), lead_s=0.8)
    session = await asyncio.wait_for(expected, 2)

    def keep(utterance: KeptUtterance) -> None:
        saved.append(keeper.keep(utterance))

    heard = await asyncio.wait_for(
        listen(session, req, engine, prompts_dir, executor, keep=keep, call_id="1700.42"), 8
    )
    await caller.close()
    assert (heard.kind, heard.choice, heard.confirm) == ("speech", "2", True)
    [future] = saved
    path = await asyncio.wrap_future(future)
    keeper.close()
    assert path == tmp_path / "recordings/utterances/20231114T221320Z-1700.42-1.wav"
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        kept = w.readframes(w.getnframes())
    [rec] = engine.made
    assert kept == bytes(rec.fed) and len(kept) > 2 * RATE * 0.6  # the word and its edges
    sidecar = json.loads(_sidecar(path).read_text())
    assert sidecar == {
        "call_id": "1700.42",
        "flow": "voice",
        "node": "menu",
        "language": "en",
        "engine": "recorder",
        "text": "support",
        "choice": "2",
        "confidence": 0.62,
        "verdict": "confirm",
        "reject_below": 0.4,
        "accept_at": 0.8,
        "choices": {"1": ["sales"], "2": ["support"]},
        "duration_ms": len(kept) // 16,
        "at": "2023-11-14T22:13:20Z",
        "replay": "ivr stt 20231114T221320Z-1700.42-1.wav --choices sales,support --language en "
        "--min-confidence 0.4 --accept-confidence 0.8 --confirm auto --json",
    }
    for item in (path, _sidecar(path)):
        assert stat.S_IMODE(item.stat().st_mode) == 0o600  # the caller's voice
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def _sidecar(wav: Path) -> Path:
    return wav.parent / wav.name.replace(".wav", ".json")


def _utterance(call_id: str) -> KeptUtterance:
    return KeptUtterance(
        bytes(320), call_id, "voice", "menu", "en", "x", CHOICES,
        Recognition("sales", "1", 0.9, "x"), "accept", Thresholds(0.4, 0.8),
    )  # fmt: skip


def test_utterances_older_than_the_retention_are_removed(tmp_path: Path) -> None:
    now = [NOW]
    keeper = UtteranceKeeper(tmp_path, 30, clock=lambda: now[0])
    old = keeper.keep(_utterance("a")).result()
    assert old is not None
    for item in (old, _sidecar(old)):
        os.utime(item, (NOW - 31 * DAY_S, NOW - 31 * DAY_S))
    young = keeper.keep(_utterance("a")).result()  # swept within the hour: nothing yet
    assert young is not None and young.name.endswith("-a-2.wav") and old.exists()
    now[0] += 3601
    keeper.keep(_utterance("b")).result()
    keeper.close()
    left = sorted(p.name for p in (tmp_path / "utterances").iterdir())
    assert old.name not in left and _sidecar(old).name not in left
    assert young.name in left and len(left) == 4


def test_a_write_that_fails_is_logged_and_forgotten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "utterances").write_text("a file where the directory should be")
    keeper = UtteranceKeeper(tmp_path, 0, clock=lambda: NOW)
    assert keeper.keep(_utterance("c")).result() is None
    keeper.close()
    assert "cannot keep an utterance of call c" in caplog.text


def test_the_setting_is_off_by_default_and_has_its_variable(tmp_path: Path) -> None:
    assert load_settings(None, env={}).speech.keep_utterances is False
    on = load_settings(None, env={"IVR_SPEECH_KEEP_UTTERANCES": "true"})
    assert on.speech.keep_utterances is True


def test_the_sidecar_replays_a_kept_utterance_as_the_call_decoded_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a "no" to "Did you say ...?" kept from a live call (tests/fixtures/live_utterances)
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "live_utterances"
    with wave.open(str(fixtures / "no.wav"), "rb") as w:
        pcm = w.readframes(w.getnframes())
    engine = PocketsphinxEngine()
    choices = (("1", ("yes", "yeah", "correct", "right")), ("2", ("no", "nope", "wrong")))
    rec = engine.recognizer([SpeechChoice(k, p) for k, p in choices], "en")
    rec.accept(pcm)
    heard = rec.result()
    kept = KeptUtterance(
        pcm, "1.2", "voice", "menu", "en", engine.name, choices, heard,
        decide(heard, engine.thresholds, "never"), engine.thresholds, "never",
    )  # fmt: skip
    keeper = UtteranceKeeper(tmp_path, 0, clock=lambda: NOW)
    wav = keeper.keep(kept).result()
    keeper.close()
    assert wav is not None
    sidecar = json.loads(_sidecar(wav).read_text())
    monkeypatch.chdir(wav.parent)
    assert main(shlex.split(sidecar["replay"])[1:]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert (replayed["text"], replayed["confidence"]) == (sidecar["text"], sidecar["confidence"])
    assert replayed["decision"] == sidecar["verdict"] == "accept"  # never asked again
