"""Text prompts rendered ahead of time: pyttsx3 (espeak-ng voices) -> 8 kHz 16-bit mono WAV.

Files are named by a hash of language and text (:func:`ivr.flow.prompts.tts_file`), so an
edited sentence gets a new file and an unchanged one is never rendered twice. Rendering is
blocking work: callers run :func:`build_prompts` in a thread, never on the event loop, and at
start-up rather than per call.
"""

from __future__ import annotations

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

from ivr.errors import IvrError
from ivr.flow.model import Flow, Speech
from ivr.flow.prompts import tts_file

TARGET_RATE_HZ = 8000  # what Asterisk plays to a telephone without transcoding
# espeak-ng voice ids by flow language; others are matched by the voice's language list.
VOICES = {"en": "gmw/en-us", "zh": "sit/cmn", "cmn": "sit/cmn", "ko": "roa/ko"}


class TtsError(IvrError):
    """A prompt could not be rendered (no voice for the language, engine failure)."""


class TtsEngine(Protocol):
    """Renders one text to an 8 kHz 16-bit mono WAV file (blocking)."""

    name: str

    def render(self, text: str, language: str, path: Path) -> None: ...


class Pyttsx3Engine:
    """pyttsx3 driving espeak-ng headless; one engine, used from one thread at a time."""

    name = "pyttsx3"

    def __init__(self, rate_wpm: int = 160) -> None:
        self.rate_wpm = rate_wpm
        self._engine: Any = None
        self._voices: dict[str, str] = {}
        self._lock = threading.Lock()  # pyttsx3 engines are not thread-safe

    def _init(self) -> Any:
        if self._engine is None:
            import pyttsx3  # imported late: it loads libespeak-ng

            try:
                self._engine = pyttsx3.init("espeak")
            except (OSError, RuntimeError) as exc:
                raise TtsError(f"cannot start espeak-ng through pyttsx3 ({exc}); install the "
                               "espeak-ng package") from None
            self._engine.setProperty("rate", self.rate_wpm)
            for voice in self._engine.getProperty("voices"):
                for lang in voice.languages or []:
                    self._voices.setdefault(str(lang), voice.id)
        return self._engine

    def voice_for(self, language: str) -> str:
        self._init()
        wanted = VOICES.get(language)
        known = set(self._voices.values())
        if wanted in known:
            return wanted
        for lang, voice in self._voices.items():
            if lang == language or lang.startswith(f"{language}-"):
                return voice
        raise TtsError(f"no espeak-ng voice for language '{language}'")

    def render(self, text: str, language: str, path: Path) -> None:
        with self._lock:
            engine = self._init()
            engine.setProperty("voice", self.voice_for(language))
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
        raise TtsError(f"{source}: the engine produced no audio ({exc or 'empty file'})") from None
    if samples.size == 0:
        raise TtsError(f"{source}: the engine produced no audio")
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


def wanted_prompts(flows: Iterable[Flow]) -> dict[str, tuple[str, str]]:
    """Every text prompt of these flows: ``{sound name: (text, language)}``."""
    out: dict[str, tuple[str, str]] = {}
    for flow in flows:
        for spec in flow.prompts():
            for parts in spec.parts_by_language.values():
                for part in parts:
                    if isinstance(part, Speech) and part.kind == "text":
                        out[tts_file(part.value, part.language)] = (part.value, part.language)
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
        for attempt in (1, 2):  # espeak-ng through pyttsx3 now and then writes an empty file
            try:
                engine.render(text, language, target)
                report.rendered.append(name)
                break
            except TtsError as exc:
                if attempt == 2:
                    report.failed[name] = str(exc)
        if progress is not None:
            progress(i, len(todo), text)
    if remove_orphans:
        for file in sorted((root / "tts").glob("*/*.wav")):
            name = file.relative_to(root).with_suffix("").as_posix()
            if name not in wanted:
                file.unlink()
                report.removed.append(name)
    return report
