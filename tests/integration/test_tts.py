"""Text prompts rendered for real with pyttsx3 + espeak-ng, resampled to 8 kHz."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from support.flowkit import flow

from ivr.errors import NoAudio, TtsError
from ivr.flow.prompts import tts_file
from ivr.prompts.tts import Pyttsx3Engine, build_prompts, wanted_prompts, write_telephone_wav

FLOW = """
start: a
languages: [en, zh]
nodes:
  a: {play: {en: "Welcome to Example Bank.", zh: "欢迎致电示例银行。"}, next: b}
  b: {play: ["Your balance is {x:currency} today.", {sound: beep}], next: hangup}
variables: {x: "1"}
"""


@pytest.fixture(scope="module")
def engine() -> Pyttsx3Engine:
    return Pyttsx3Engine()


def read(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        return w.getparams(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_wanted_prompts_are_the_static_texts() -> None:
    wanted = wanted_prompts([flow(FLOW)])
    assert set(wanted.values()) == {
        ("Welcome to Example Bank.", "en"),
        ("欢迎致电示例银行。", "zh"),
        ("Your balance is", "en"),
        ("today.", "en"),
    }
    assert tts_file("Welcome to Example Bank.", "en") in wanted


def test_render_is_8khz_mono_16bit_and_audible(tmp_path: Path, engine: Pyttsx3Engine) -> None:
    out = tmp_path / "hello.wav"
    engine.render("Press one for sales.", "en", out)
    params, samples = read(out)
    assert (params.framerate, params.nchannels, params.sampwidth) == (8000, 1, 2)
    seconds = len(samples) / 8000
    assert 0.8 < seconds < 4.0
    assert np.sqrt(np.mean(samples.astype(float) ** 2)) > 300  # speech, not silence


def test_mandarin_uses_a_mandarin_voice(tmp_path: Path, engine: Pyttsx3Engine) -> None:
    assert engine.voice_for("zh") == "sit/cmn"
    engine.render("欢迎致电示例银行。", "zh", tmp_path / "zh.wav")
    engine.render("欢迎致电示例银行。", "en", tmp_path / "en.wav")
    _, zh = read(tmp_path / "zh.wav")
    _, en = read(tmp_path / "en.wav")
    # an English voice spells the characters out ("Chinese letter..."), far longer
    assert len(zh) < len(en)


def test_unknown_language_is_a_clear_error(tmp_path: Path, engine: Pyttsx3Engine) -> None:
    with pytest.raises(TtsError, match="no espeak-ng voice for language 'xx'"):
        engine.render("hi", "xx", tmp_path / "x.wav")


def test_build_skips_rendered_and_removes_orphans(tmp_path: Path, engine: Pyttsx3Engine) -> None:
    flows = [flow(FLOW)]
    first = build_prompts(flows, tmp_path, engine)
    assert len(first.rendered) == 4 and first.skipped == 0 and not first.failed
    orphan = tmp_path / "tts/en/0000000000000000.wav"
    orphan.write_bytes(b"")
    second = build_prompts(flows, tmp_path, engine, remove_orphans=True)
    assert second.rendered == [] and second.skipped == 4
    assert second.removed == ["tts/en/0000000000000000"]
    assert not orphan.exists()
    assert not list(tmp_path.rglob("*.tmp"))


class NoAudioEngine:
    """An engine whose every file comes out empty."""

    def render(self, text: str, language: str, path: Path) -> None:
        empty = path.with_suffix(".raw.wav")
        empty.write_bytes(b"")
        write_telephone_wav(empty, path)  # raises NoAudio, not EOFError


def flow_with_prompt(text: str) -> object:
    return flow(f"""
        start: a
        nodes:
          a: {{play: "{text}", next: hangup}}
    """)


def test_a_prompt_the_engine_cannot_render_is_reported(tmp_path: Path) -> None:
    report = build_prompts([flow_with_prompt("Another.")], tmp_path, NoAudioEngine())
    [(name, reason)] = report.failed.items()
    assert name == tts_file("Another.", "en") and not report.rendered
    assert "produced no audio" in reason


def test_an_empty_rendering_is_tried_again(
    tmp_path: Path, engine: Pyttsx3Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Pyttsx3Engine._render_once
    calls: list[str] = []

    def flaky(self: Pyttsx3Engine, text: str, voice: str, path: Path) -> None:
        calls.append(text)
        if len(calls) < 3:
            raise NoAudio("empty file")
        real(self, text, voice, path)

    monkeypatch.setattr(Pyttsx3Engine, "_render_once", flaky)
    engine.render("Third time lucky.", "en", tmp_path / "a.wav")
    assert len(calls) == 3 and (tmp_path / "a.wav").stat().st_size > 1000
    calls.clear()
    with pytest.raises(NoAudio):
        engine.render("Never.", "en", tmp_path / "b.wav", attempts=2)
    assert len(calls) == 2 and not (tmp_path / "b.wav").exists()


def test_many_engines_in_one_process_never_write_an_empty_prompt(tmp_path: Path) -> None:
    # One pyttsx3 engine per Pyttsx3Engine used to leave ~1 render in 25 empty (libespeak-ng
    # is process-global); they share one now, and an empty file is rendered again.
    for i in range(40):
        for j, text in enumerate(("yes", "lost card", "Say balance or agent.")):
            Pyttsx3Engine().render(text, "en", tmp_path / f"{i}-{j}.wav")
    assert min(f.stat().st_size for f in tmp_path.glob("*.wav")) > 1000
