"""How long a prompt plays, read from its sound file: a playback's deadline follows it.

Asterisk's ``STREAM FILE name`` picks ``name.<ext>`` among the formats it has; the project's
prompts (``prompts/``, which Asterisk mounts as a sounds directory) are mostly WAV rendered by
the TTS. A WAV's length comes from its header (stdlib :mod:`wave`); headerless formats from
their size. Lengths are cached per name and re-read when the file changes (a ``stat`` at most
every ``recheck_s`` per name, not one per playback; the header read is a few hundred bytes of a
local file, so it stays on the loop).
"""

from __future__ import annotations

import dataclasses
import os
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Headerless formats Asterisk plays, in bytes per second of audio.
_RAW_BYTES_PER_S: Final = {
    "ulaw": 8000, "alaw": 8000, "ul": 8000, "al": 8000, "pcm": 8000, "g722": 8000,
    "sln": 16000, "raw": 16000, "sln16": 32000, "gsm": 1650, "g729": 1000,
}  # fmt: skip
_WAV: Final = ("wav", "wav16")  # RIFF/WAVE PCM (8 and 16 kHz)
_EXTENSIONS: Final = (*_WAV, *_RAW_BYTES_PER_S)


@dataclass(frozen=True, slots=True)
class _Known:
    path: Path
    mtime_ns: int
    size: int
    seconds: float | None  # None: the file is there but unreadable
    checked_at: float  # time.monotonic() of the last stat


class SoundLengths:
    """Lengths of the sounds under ``directory`` (``None``: every length is unknown).

    ``miss_ttl_s``: how long "no such file" is remembered (a prompt rendered on reload is
    found after that; meanwhile a miss costs no ``stat`` per extension). ``recheck_s``: how
    long a found length is trusted before the file is looked at again (a re-rendered prompt
    gets its new length after that).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        *,
        miss_ttl_s: float = 10.0,
        recheck_s: float = 1.0,
    ) -> None:
        self.directory = None if directory is None else Path(directory)
        self.miss_ttl_s = miss_ttl_s
        self.recheck_s = recheck_s
        self._known: dict[str, _Known] = {}
        self._missing: dict[str, float] = {}  # name -> when it was found missing

    def seconds(self, name: str) -> float | None:
        """How long ``name`` (as ``STREAM FILE`` takes it, no extension) plays; ``None`` if
        unknown (no such file here, or a format or header this does not read)."""
        if self.directory is None:
            return None
        known = self._known.get(name)
        if known is not None:
            now = time.monotonic()
            if now - known.checked_at < self.recheck_s:
                return known.seconds
            try:
                st = os.stat(known.path)
            except OSError:
                del self._known[name]
            else:
                if (st.st_mtime_ns, st.st_size) == (known.mtime_ns, known.size):
                    self._known[name] = dataclasses.replace(known, checked_at=now)
                    return known.seconds
        missed = self._missing.get(name)
        if missed is not None and time.monotonic() - missed < self.miss_ttl_s:
            return None
        return self._look_up(name)

    def _look_up(self, name: str) -> float | None:
        assert self.directory is not None
        for ext in _EXTENSIONS:
            path = self.directory / f"{name}.{ext}"
            try:
                st = os.stat(path)
            except OSError:
                continue
            seconds = _file_seconds(path, ext, st.st_size)
            self._known[name] = _Known(path, st.st_mtime_ns, st.st_size, seconds, time.monotonic())
            self._missing.pop(name, None)
            return seconds
        self._missing[name] = time.monotonic()
        return None


def _file_seconds(path: Path, ext: str, size: int) -> float | None:
    if ext in _WAV:
        try:
            with wave.open(str(path), "rb") as w:
                rate = w.getframerate()
                return w.getnframes() / rate if rate > 0 else None
        except (OSError, EOFError, wave.Error):
            return None  # not PCM (e.g. GSM in WAV) or cut short: unknown
    return size / _RAW_BYTES_PER_S[ext]
