"""Transcribe a whole recording (a caller's message) with a loaded engine, free-form: no
menu grammar, the engine's own language model. Blocking and slow (seconds): run it in a
worker thread, never on a call's path.

Vosk decodes with its model as loaded for menus; pocketsphinx gets one decoder of its own
with the wheel's US English language model (the menus' decoders have none), made on first
use and shared under a lock; in the worker processes when the engine decodes in them
(:mod:`ivr.speech.sphinx_pool`).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ivr.errors import SpeechError
from ivr.speech.audio import MODEL_RATE_HZ, read_wav, resample
from ivr.speech.base import PooledEngine, SpeechEngine

__all__ = ["transcribe"]

_sphinx_lock = threading.Lock()
_sphinx: dict[str | None, Any] = {}  # acoustic model -> a decoder with a language model


def transcribe(engine: SpeechEngine, path: str | Path) -> str:
    """The words said in the WAV at ``path`` (``""`` for none); :class:`SpeechError` when
    the file cannot be read or the engine cannot transcribe."""
    pcm = read_wav(path)
    inner: Any = getattr(engine, "engine", engine)  # a metrics wrapper holds the engine
    if inner.name == "vosk":
        import vosk

        recognizer = vosk.KaldiRecognizer(inner.model, pcm.rate_hz)
        recognizer.AcceptWaveform(pcm.data)
        return str(json.loads(recognizer.FinalResult()).get("text", "")).strip()
    if inner.name == "pocketsphinx":
        data = pcm.data
        if pcm.rate_hz != MODEL_RATE_HZ:
            data = resample(data, pcm.rate_hz, MODEL_RATE_HZ)
        hmm: str | None = inner.hmm
        if isinstance(inner, PooledEngine):  # off this process: the decode keeps the GIL
            seconds = len(data) / 2 / MODEL_RATE_HZ
            return inner.call(sphinx_transcript, hmm, data, timeout_s=30 + seconds)
        return sphinx_transcript(hmm, data)
    raise SpeechError(f"the {inner.name} engine cannot transcribe recordings")


def sphinx_transcript(hmm: str | None, pcm16k: bytes) -> str:
    """pocketsphinx's free-form reading of ``pcm16k`` with the language model (model
    ``hmm``; one decoder per model and process, made on first use)."""
    with _sphinx_lock:
        if hmm not in _sphinx:
            _sphinx[hmm] = _sphinx_decoder(hmm)
        decoder = _sphinx[hmm]
        # A fresh front end: its noise estimate would otherwise carry over from the messages
        # this decoder heard before, and the same recording read differently.
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(pcm16k, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
    return "" if hyp is None else str(hyp.hypstr).strip()


def _sphinx_decoder(hmm: str | None) -> Any:
    from pocketsphinx import Decoder

    options: dict[str, Any] = {"samprate": MODEL_RATE_HZ, "loglevel": "FATAL"}
    if hmm is not None:
        options["hmm"] = hmm
    return Decoder(**options)
