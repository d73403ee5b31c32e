"""Kept utterances: what a live speech menu's recogniser was fed, saved for tuning.

With ``speech.keep_utterances`` on, every utterance a live call's recogniser decodes is written
as ``<recordings_dir>/utterances/<stamp>-<call id>-<n>.wav`` (8 kHz 16-bit mono: exactly the
bytes given to ``accept``) with a JSON sidecar of the same name (text, choice, confidence,
verdict, thresholds, flow, node, choices, language, engine, call id, time, and the ``ivr stt``
command that replays it with the same choices and thresholds), so that the live result and
``ivr stt FILE.wav --flow F --node N --json`` (or that command) can be compared.

The caller's voice is private: the directory is the server's own (mode 0700, files 0600),
never under ``prompts/``, and files older than ``recordings_retention_days`` (the call
recordings' retention; 0 keeps them) are removed, by modification time on the injected clock.
Writing and removing run on the keeper's one thread, never on the event loop and never holding
up a call: a failed write is logged and forgotten.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import re
import shlex
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ivr.clock import Clock
from ivr.speech.base import SAMPLE_RATE_HZ, Recognition, Thresholds

__all__ = ["UTTERANCES", "KeptUtterance", "UtteranceKeeper"]

log = logging.getLogger("ivr.speech")

UTTERANCES = "utterances"  # under the recordings directory
DAY_S = 86400.0
_SWEEP_EVERY_S = 3600.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class KeptUtterance:
    """One decoded utterance of a live call and what the menu made of it."""

    pcm: bytes  # 8 kHz 16-bit mono, as fed to the recogniser
    call_id: str
    flow: str
    node: str
    language: str
    engine: str
    choices: tuple[tuple[str, tuple[str, ...]], ...]
    recognition: Recognition
    verdict: str  # accept | confirm | reject (ivr.speech.decision)
    thresholds: Thresholds
    confirm: str = "auto"  # the menu's confirm mode (a confirmation question's: never)

    def replay(self, wav_name: str) -> str:
        """The ``ivr stt`` command that decodes the kept WAV as the call did: the same
        choices (named by their first phrase), language, thresholds and confirm mode."""
        choices = ",".join("|".join(phrases) for _, phrases in self.choices)
        return shlex.join([
            "ivr", "stt", wav_name, "--choices", choices, "--language", self.language,
            "--min-confidence", f"{self.thresholds.reject_below:g}",
            "--accept-confidence", f"{self.thresholds.accept_at:g}",
            "--confirm", self.confirm, "--json",
        ])  # fmt: skip

    def sidecar(self, at: float, wav_name: str = "") -> dict[str, object]:
        """The JSON written beside the WAV."""
        heard = self.recognition
        return {
            "call_id": self.call_id,
            "flow": self.flow,
            "node": self.node,
            "language": self.language,
            "engine": self.engine,
            "text": heard.text,
            "choice": heard.choice,
            "confidence": heard.confidence,
            "verdict": self.verdict,
            "reject_below": self.thresholds.reject_below,
            "accept_at": self.thresholds.accept_at,
            "choices": {key: list(phrases) for key, phrases in self.choices},
            "duration_ms": len(self.pcm) // (2 * SAMPLE_RATE_HZ // 1000),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
            "replay": self.replay(wav_name),
        }


class UtteranceKeeper:
    """Saves :class:`KeptUtterance` s under ``<recordings_dir>/utterances`` on its own thread.

    ``retention_days``: files older than this are removed (checked at most hourly, on the
    thread); 0 keeps them. ``clock``: the wall clock (names, times, retention).
    """

    def __init__(self, recordings_dir: str | Path, retention_days: float, clock: Clock) -> None:
        self.directory = Path(recordings_dir) / UTTERANCES
        self.retention_days = retention_days
        self.clock = clock
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="utterances"
        )
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._swept_at: float | None = None

    def keep(self, utterance: KeptUtterance) -> concurrent.futures.Future[Path | None]:
        """Save it in the background; the future gives the WAV's path (``None``: not saved)."""
        at = self.clock()
        with self._lock:
            n = self._counts[utterance.call_id] = self._counts.get(utterance.call_id, 0) + 1
        return self._executor.submit(self._write, utterance, at, n)

    def close(self) -> None:
        """Finish the writes under way (they are small), then stop the thread."""
        self._executor.shutdown(wait=True)

    def _write(self, utterance: KeptUtterance, at: float, n: int) -> Path | None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(at))
            call = _UNSAFE.sub("_", utterance.call_id) or "call"
            base = f"{stamp}-{call}-{n}"  # a call id has dots: no with_suffix
            wav = self.directory / f"{base}.wav"
            with _private(wav) as fh, wave.open(fh, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(SAMPLE_RATE_HZ)
                w.writeframes(utterance.pcm)
            with _private(self.directory / f"{base}.json") as fh:
                sidecar = utterance.sidecar(at, wav.name)
                fh.write(json.dumps(sidecar, indent=1).encode() + b"\n")
            self._sweep(at)
            return wav
        except OSError as exc:
            log.warning("cannot keep an utterance of call %s: %s", utterance.call_id, exc)
            return None

    def _sweep(self, now: float) -> None:
        """Remove kept utterances older than the retention (at most once an hour)."""
        if self.retention_days <= 0:
            return
        if self._swept_at is not None and now - self._swept_at < _SWEEP_EVERY_S:
            return
        self._swept_at = now
        before = now - self.retention_days * DAY_S
        for path in self.directory.iterdir():
            try:
                if path.suffix in (".wav", ".json") and path.stat().st_mtime < before:
                    path.unlink()
            except OSError as exc:
                log.warning("utterance retention: cannot remove %s: %s", path, exc)


def _private(path: Path) -> BinaryIO:
    """``path`` opened for writing, readable by the server's user only."""
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
