"""Text prompts rendered ahead of time: pyttsx3 (espeak-ng voices) -> 8 kHz 16-bit mono WAV.

Files are named by a hash of language and text (:func:`ivr.flow.prompts.tts_file`), so an
edited sentence gets a new file and an unchanged one is never rendered twice. The say-as
words of each language a flow speaks (:mod:`ivr.flow.sayas`) are rendered the same way, under
``say/`` (:func:`ivr.flow.sayas.clip_file`). Rendering is blocking work: callers run
:func:`build_prompts` in a thread, never on the event loop, and at start-up rather than per
call.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import tempfile
import threading
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ivr.errors import NoAudio, TtsError
from ivr.flow.model import Flow
from ivr.flow.model_values import Speech
from ivr.flow.prompts import tts_file
from ivr.flow.sayas import clip_file, rules_for

TARGET_RATE_HZ = 8000  # what Asterisk plays to a telephone without transcoding
# espeak-ng voice ids by flow language; others are matched by the voice's language list.
FALLBACK_DIR = "fallback"  # the dialplan's apology per language (asterisk-conf/extensions.conf)
VOICES = {"en": "gmw/en-us", "zh": "sit/cmn", "cmn": "sit/cmn", "ko": "roa/ko"}


class TtsEngine(Protocol):
    """Renders one text to an 8 kHz 16-bit mono WAV file (blocking)."""

    name: str

    def render(self, text: str, language: str, path: Path) -> None: ...


class _Espeak:
    """The process's one pyttsx3 espeak engine. libespeak-ng is process-global: a second
    pyttsx3 engine re-initialises it under the first, and about one render in 25 then came out
    empty (measured: 7 of 180 with an engine per render, 0 of 180 with one shared engine)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # pyttsx3 engines are not thread-safe either
        self.engine: Any = None
        self.voices: dict[str, str] = {}  # espeak language -> voice id

    def get(self) -> Any:
        """The shared engine (call with :attr:`lock` held)."""
        if self.engine is None:
            import pyttsx3  # imported late: it loads libespeak-ng

            try:
                self.engine = pyttsx3.init("espeak")
            except (OSError, RuntimeError) as exc:
                raise TtsError(
                    f"cannot start espeak-ng through pyttsx3 ({exc}); install the espeak-ng package"
                ) from None
            for voice in self.engine.getProperty("voices"):
                for lang in voice.languages or []:
                    self.voices.setdefault(str(lang), voice.id)
            # let it go while the interpreter is whole: pyttsx3's __del__ fails at teardown
            atexit.register(self.close)
        return self.engine

    def close(self) -> None:
        with self.lock:
            self.engine = None


_ESPEAK = _Espeak()


class Pyttsx3Engine:
    """pyttsx3 driving espeak-ng headless; any number of these share one engine."""

    name = "pyttsx3"

    def __init__(self, rate_wpm: int = 160) -> None:
        self.rate_wpm = rate_wpm

    def voice_for(self, language: str) -> str:
        with _ESPEAK.lock:
            _ESPEAK.get()
            voices = dict(_ESPEAK.voices)
        wanted = VOICES.get(language)
        if wanted is not None and wanted in voices.values():
            return wanted
        for lang, voice in voices.items():
            if lang == language or lang.startswith(f"{language}-"):
                return voice
        raise TtsError(f"no espeak-ng voice for language '{language}'")

    def render(self, text: str, language: str, path: Path, *, attempts: int = 3) -> None:
        voice = self.voice_for(language)
        for attempt in range(1, attempts + 1):
            try:
                self._render_once(text, voice, path)
                return
            except NoAudio:
                # pyttsx3 2.99 still leaves about one file in 300 unwritten (measured with
                # the shared engine); a second try has always worked
                if attempt == attempts:
                    raise

    def _render_once(self, text: str, voice: str, path: Path) -> None:
        with _ESPEAK.lock:
            engine = _ESPEAK.get()
            engine.setProperty("rate", self.rate_wpm)
            engine.setProperty("voice", voice)
            fd, raw = tempfile.mkstemp(suffix=".wav", dir=path.parent)
            os.close(fd)
            try:
                engine.save_to_file(text, raw)
                with contextlib.redirect_stdout(io.StringIO()):  # the driver prints each file
                    engine.runAndWait()
                write_telephone_wav(Path(raw), path)
            finally:
                Path(raw).unlink(missing_ok=True)


def write_telephone_wav(source: Path, target: Path) -> None:
    """Convert any 16-bit mono WAV to 8 kHz (soxr resampling); atomic replace of ``target``."""
    import numpy as np
    import soxr

    try:
        with wave.open(str(source), "rb") as w:
            if w.getsampwidth() != 2:
                raise TtsError(f"{source}: expected 16-bit audio, got {8 * w.getsampwidth()}-bit")
            rate, channels = w.getframerate(), w.getnchannels()
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    except (EOFError, wave.Error) as exc:  # an empty or cut file from the engine
        raise NoAudio(f"{source}: the engine produced no audio ({exc or 'empty file'})") from None
    if samples.size == 0:
        raise NoAudio(f"{source}: the engine produced no audio")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    if rate != TARGET_RATE_HZ:
        samples = soxr.resample(samples, rate, TARGET_RATE_HZ)
    tmp = target.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(TARGET_RATE_HZ)
        out.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    tmp.replace(target)


def trim_silence(path: Path, *, keep_s: float = 0.05) -> None:
    """Cut a rendering's leading and trailing silence down to ``keep_s`` (atomic replace).

    espeak-ng ends each utterance with about 0.35 s of silence: fine after a sentence, but a
    say-as word is one of many played in a row ("一千两百三十四元五角" is ten clips), and the
    pauses would make the number crawl."""
    import numpy as np

    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > max(200, samples.max() // 20))
    if loud.size == 0:
        return
    keep = round(keep_s * params.framerate)
    start, end = max(0, int(loud[0]) - keep), int(loud[-1]) + keep
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as out:
        out.setparams(params)
        out.writeframes(samples[start:end].tobytes())
    tmp.replace(path)


def wanted_prompts(flows: Iterable[Flow]) -> dict[str, tuple[str, str]]:
    """Every text prompt of these flows, and the say-as clips of every language they speak
    that has rules (:mod:`ivr.flow.sayas`): ``{sound name: (text, language)}``."""
    out: dict[str, tuple[str, str]] = {}
    languages: set[str] = set()
    for flow in flows:
        languages.update((flow.language, *flow.languages))
        for spec in flow.prompts():
            languages.update(spec.parts_by_language)
            for parts in spec.parts_by_language.values():
                for part in parts:
                    if isinstance(part, Speech) and part.kind == "text":
                        out[tts_file(part.value, part.language)] = (part.value, part.language)
    for language in sorted(languages):
        rules = rules_for(language)
        if rules is None:
            continue
        for word in sorted(rules.clips):
            out[clip_file(word, language)] = (word, language)
        # under a name the dialplan can build from CHANNEL(language)
        out[f"{FALLBACK_DIR}/{language}"] = (rules.fallback, language)
    return out


@dataclass
class BuildReport:
    rendered: list[str] = field(default_factory=list)
    skipped: int = 0
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> reason


def build_prompts(
    flows: Iterable[Flow],
    prompts_dir: str | Path,
    engine: TtsEngine,
    *,
    remove_orphans: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> BuildReport:
    """Render every missing text prompt; optionally delete renderings no flow uses any more."""
    root = Path(prompts_dir)
    wanted = wanted_prompts(flows)
    report = BuildReport()
    todo = [n for n in sorted(wanted) if not (root / f"{n}.wav").is_file()]
    report.skipped = len(wanted) - len(todo)
    for i, name in enumerate(todo, 1):
        text, language = wanted[name]
        target = root / f"{name}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            engine.render(text, language, target)
            if name.startswith("say/"):  # words said in a row: no pause after each
                trim_silence(target)
            report.rendered.append(name)
        except TtsError as exc:
            report.failed[name] = str(exc)
        if progress is not None:
            progress(i, len(todo), text)
    if remove_orphans:
        for file in sorted([*root.glob("tts/*/*.wav"), *root.glob("say/*/*.wav")]):
            name = file.relative_to(root).with_suffix("").as_posix()
            if name not in wanted:
                file.unlink()
                report.removed.append(name)
    return report
