"""Text prompts rendered for real with pyttsx3 + espeak-ng, resampled to 8 kHz."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from support.flowkit import flow

from ivr.errors import NoAudio, TtsError
from ivr.flow.prompts import tts_file
from ivr.flow.sayas import clip_file, rules_for
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


TEXTS = 4  # the text prompts of FLOW


def test_wanted_prompts_are_the_static_texts_and_each_languages_clips() -> None:
    wanted = wanted_prompts([flow(FLOW)])
    texts = {v for k, v in wanted.items() if k.startswith("tts/")}
    assert texts == {
        ("Welcome to Example Bank.", "en"),
        ("欢迎致电示例银行。", "zh"),
        ("Your balance is", "en"),
        ("today.", "en"),
    }
    assert tts_file("Welcome to Example Bank.", "en") in wanted
    clips = {k: v for k, v in wanted.items() if k.startswith("say/")}
    apologies = {k: v for k, v in wanted.items() if k.startswith("fallback/")}
    assert len(clips) + len(apologies) == len(wanted) - TEXTS
    for language in ("en", "zh"):  # the flow's languages: each has rules
        rules = rules_for(language)
        assert rules is not None
        assert {clip_file(w, language): (w, language) for w in rules.clips}.items() <= clips.items()
        # the dialplan's fallback apology, under a name built from CHANNEL(language)
        assert apologies[f"fallback/{language}"] == (rules.fallback, language)
    assert clip_file("两", "zh") in wanted and clip_file("dollars", "en") in wanted


def test_a_language_without_rules_has_no_clips() -> None:
    wanted = wanted_prompts(
        [flow('start: a\nlanguage: ko\nnodes:\n  a: {play: "안녕하세요", next: hangup}\n')]
    )
    assert list(wanted) == [tts_file("안녕하세요", "ko")]


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
    wanted = len(wanted_prompts(flows))
    first = build_prompts(flows, tmp_path, engine)
    assert len(first.rendered) == wanted and first.skipped == 0 and not first.failed
    orphans = [tmp_path / "tts/en/0000000000000000.wav", tmp_path / "say/zh/0000000000000000.wav"]
    for orphan in orphans:
        orphan.write_bytes(b"")
    second = build_prompts(flows, tmp_path, engine, remove_orphans=True)
    assert second.rendered == [] and second.skipped == wanted
    assert second.removed == ["say/zh/0000000000000000", "tts/en/0000000000000000"]
    assert not any(orphan.exists() for orphan in orphans)
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
        language: ko
        nodes:
          a: {{play: "{text}", next: hangup}}
    """)


def test_a_prompt_the_engine_cannot_render_is_reported(tmp_path: Path) -> None:
    report = build_prompts([flow_with_prompt("Another.")], tmp_path, NoAudioEngine())
    [(name, reason)] = report.failed.items()
    assert name == tts_file("Another.", "ko") and not report.rendered
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


def test_say_as_clips_are_rendered_without_the_trailing_pause(
    tmp_path: Path, engine: Pyttsx3Engine
) -> None:
    bank = flow('start: a\nlanguage: zh\nnodes:\n  a: {play: "您好", next: hangup}\n')
    report = build_prompts([bank], tmp_path, engine)
    assert not report.failed
    _, text = read(tmp_path / f"{tts_file('您好', 'zh')}.wav")
    _, word = read(tmp_path / f"{clip_file('两', 'zh')}.wav")
    for samples in (text, word):
        assert np.sqrt(np.mean(samples.astype(float) ** 2)) > 300  # speech, not silence
    # the sentence keeps espeak-ng's pause (about 0.35 s); the word keeps 0.05 s of it
    assert np.abs(text[-2400:]).max() < 200  # the last 0.3 s are silent
    assert np.abs(word[-800:]).max() > 200  # sound within the last 0.1 s
    assert len(word) / 8000 < 0.7
