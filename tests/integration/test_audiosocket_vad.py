"""The energy VAD on synthetic signals and on espeak-ng speech (clean and in line noise)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from support import speech_audio as sa

from ivr.asterisk.audiosocket.vad import SpeechEnd, SpeechStart, Vad, VadConfig, frame_level_dbfs

RATE = 8000
needs_espeak = pytest.mark.skipif(not sa.have_espeak(), reason="espeak-ng is not installed")


def pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def tone(seconds: float, dbfs: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.sqrt(2) * 32768 * 10 ** (dbfs / 20) * np.sin(2 * np.pi * hz * t)


def noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    return np.frombuffer(sa.silence(seconds, noise_dbfs=dbfs, seed=seed), "<i2").astype(float)


def test_level_of_silence_and_full_scale() -> None:
    assert frame_level_dbfs(bytes(320)) == -100.0
    assert frame_level_dbfs(pcm(tone(0.02, -20.0))) == pytest.approx(-20.0, abs=0.2)
    assert frame_level_dbfs(b"") == -100.0


def test_tone_burst_in_silence_start_and_end_with_hangover() -> None:
    signal = np.concatenate([np.zeros(RATE), tone(0.6, -20), np.zeros(2 * RATE)])
    events = Vad(VadConfig(min_speech_ms=100, end_silence_ms=700)).process(pcm(signal))
    assert events == [
        SpeechStart(start_ms=1000, at_ms=1100),
        SpeechEnd(start_ms=1000, end_ms=1600, at_ms=2300),
    ]


def test_any_chunking_gives_the_same_events() -> None:
    signal = pcm(np.concatenate([noise(1, -45), tone(0.5, -15) + noise(0.5, -45), noise(2, -45)]))
    whole = Vad().process(signal)
    vad, chunked = Vad(), []
    for i in range(0, len(signal), 77):  # odd sizes split samples and frames
        chunked += vad.process(signal[i : i + 77])
    assert chunked == whole and len(whole) == 2


def test_clicks_shorter_than_min_speech_never_start() -> None:
    quiet = noise(0.5, -50)
    click = tone(0.06, -6, 1000)
    signal = np.concatenate([quiet, click, quiet, click, quiet, click, quiet])
    assert Vad(VadConfig(min_speech_ms=100)).process(pcm(signal)) == []


@pytest.mark.parametrize("dbfs", [-55, -45, -35, -25, -15])
def test_steady_line_noise_is_never_speech(dbfs: float) -> None:
    for seed in range(3):
        vad = Vad()
        assert vad.process(pcm(noise(6, dbfs, seed))) == []
        assert vad.noise_floor_dbfs == pytest.approx(max(dbfs, -56), abs=2)


def test_hum_and_slowly_wobbling_hiss_are_not_speech() -> None:
    t = np.arange(8 * RATE) / RATE
    hiss = noise(8, -35, seed=4) * 10 ** (3 * np.sin(2 * np.pi * 0.3 * t) / 20)
    hum = tone(8, -25, 150) + tone(8, -35, 250)
    assert Vad().process(pcm(hiss + hum)) == []


def test_the_floor_follows_a_louder_line_and_speech_above_it_is_found() -> None:
    """After 3 s of -30 dBFS hiss (floor adapted), a tone 12 dB above still counts."""
    signal = np.concatenate([noise(3, -30), tone(0.5, -18) + noise(0.5, -30, 1), noise(2, -30, 2)])
    events = Vad().process(pcm(signal))
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    assert 3000 <= events[0].start_ms <= 3040


def test_cut_ends_speech_and_voiced_ms_counts() -> None:
    vad = Vad()
    vad.process(pcm(np.concatenate([np.zeros(RATE // 2), tone(0.5, -20)])))
    assert vad.in_speech and vad.voiced_ms == 500
    end = vad.cut()
    assert end is not None and end.start_ms == 500 and end.end_ms == 1000
    assert vad.cut() is None


def _onset_offset(clean: bytes) -> tuple[int, int]:
    levels = np.array([frame_level_dbfs(clean[i : i + 320]) for i in range(0, len(clean), 320)])
    active = np.nonzero(levels > levels.max() - 30)[0]
    return int(active[0]) * 20, int(active[-1] + 1) * 20


@needs_espeak
@pytest.mark.parametrize("voice", sa.ENGLISH_VOICES, ids=str)
@pytest.mark.parametrize(("snr_db", "kind"), [(None, "white"), (20, "white"), (15, "pink")])
def test_espeak_utterances_in_noise(voice: sa.Voice, snr_db: float | None, kind: str) -> None:
    """Each utterance: one start near its onset, one end after its last word."""
    for text in ("I lost my card", "balance", "talk to an agent", "yes", "no thanks"):
        clean = sa.speech(text, voice, lead_s=1.0, tail_s=2.0)
        noisy = sa.speech(text, voice, snr_db=snr_db, noise=kind, lead_s=1.0, tail_s=2.0)
        onset, offset = _onset_offset(clean)
        events = Vad().process(noisy)
        assert [type(e) for e in events] == [SpeechStart, SpeechEnd], (text, events)
        start, end = events
        assert -60 <= start.start_ms - onset <= 250, (text, onset, start)
        assert start.at_ms - start.start_ms <= 400, (text, start)  # decided quickly
        assert end.end_ms >= offset - 250 and end.at_ms <= offset + 1200, (text, offset, end)


@needs_espeak
def test_speech_at_10db_snr_is_mostly_found() -> None:
    found = 0
    for voice in sa.ENGLISH_VOICES:
        for text in ("I lost my card", "balance", "talk to an agent", "no thanks"):
            noisy = sa.speech(text, voice, snr_db=10, lead_s=1.0, tail_s=2.0)
            found += [type(e) for e in Vad().process(noisy)] == [SpeechStart, SpeechEnd]
    assert found >= 18  # of 20 (measured: 19-20)


def test_pyttsx3_speech_then_silence(tmp_path: Path) -> None:
    """The project's own TTS voice as the caller: found, and ended by the hangover."""
    from ivr.prompts.tts import Pyttsx3Engine

    Pyttsx3Engine().render("I lost my card", "en", tmp_path / "u.wav")
    with wave.open(str(tmp_path / "u.wav"), "rb") as w:
        speech = w.readframes(w.getnframes())
    onset, offset = _onset_offset(speech)
    events = Vad().process(bytes(8000) + speech + bytes(24000))
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    assert events[0].start_ms == 500 + onset
    assert offset - 200 <= events[1].end_ms - 500 <= offset
    assert events[1].at_ms - events[1].end_ms == 700
