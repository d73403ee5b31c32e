"""An utterance cleaned before decoding: isolated clicks silenced, silence trimmed to a margin.

A live utterance is the VAD's speech plus a pre-roll before it and the hangover after it, so it
carries whatever the line did around the words: a click when the RTP stream starts, a pop at a
key press, a handset knock. pocketsphinx scores every frame, and one loud 20 ms burst in the
silence wrecks the scores the confidence is built on: measured on the utterances kept from live
calls through the real Asterisk (``speech.keep_utterances``), a 7 ms burst at -19 dBFS (SIPp
playing the caller WAV's 58-byte header as A-law) 300 ms before "support" took its confidence
from 0.80 to 0.08. Speech never looks like that: its bursts (a plosive's release) come right
after or before voiced sound, not between two stretches of silence.

:func:`remove_clicks` silences every run of loud frames no longer than ``max_click_ms`` with at
least ``quiet_ms`` of quiet (or the utterance's edge) on both sides; everything else is left
bit for bit as it was.

:func:`trim_silence` cuts the silence around the speech down to ``margin_ms`` on each side. The
recogniser then hears the same word the same way whatever the VAD's pre-roll and hangover or
the caller's pause left around it: pocketsphinx normalises its features over the whole
utterance and the confidence's scores are per frame, so the amount of silence moved them
(the same "no" through A-law: 0.28 to 0.90 with 0.2 to 0.75 s of silence before it).
"""

from __future__ import annotations

import numpy as np

__all__ = ["remove_clicks", "trim_silence"]

FRAME_MS = 10
_LOWEST_FLOOR_DBFS = -75.0


def _levels(samples: np.ndarray, size: int) -> np.ndarray:
    """Each ``size``-sample frame's RMS level in dBFS (-150 for digital silence)."""
    frames = samples.size // size
    blocks = samples[: frames * size].astype(np.float64).reshape(frames, size)
    rms = np.sqrt(np.mean(blocks * blocks, axis=1))
    levels: np.ndarray = 20.0 * np.log10(np.maximum(rms, 1e-3) / 32768.0)
    return levels


def _floor(level: np.ndarray) -> float:
    return max(float(np.percentile(level, 10)), _LOWEST_FLOOR_DBFS)


def trim_silence(
    pcm: bytes, rate_hz: int = 8000, *, margin_ms: int = 250, above_floor_db: float = 15.0
) -> bytes:
    """``pcm`` from ``margin_ms`` before its first frame ``above_floor_db`` over the floor
    (see :func:`remove_clicks`) to ``margin_ms`` after its last one; unchanged when there is
    no such frame or no more silence than that."""
    size = rate_hz * FRAME_MS // 1000
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    if samples.size < 3 * size:
        return pcm
    level = _levels(samples, size)
    loud = np.flatnonzero(level >= _floor(level) + above_floor_db)
    if loud.size == 0:
        return pcm
    margin = margin_ms // FRAME_MS
    start = max(0, int(loud[0]) - margin) * size
    end = min(level.size, int(loud[-1]) + 1 + margin) * size
    if end == level.size * size:
        end = samples.size  # keep a last partial frame
    return pcm[2 * start : 2 * end]


def remove_clicks(
    pcm: bytes,
    rate_hz: int = 8000,
    *,
    max_click_ms: int = 40,
    quiet_ms: int = 150,
    above_floor_db: float = 20.0,
    quiet_above_floor_db: float = 10.0,
) -> bytes:
    """``pcm`` (16-bit mono) with isolated clicks silenced (see the module docstring).

    A frame is *loud* ``above_floor_db`` over the utterance's floor (its 10th-percentile frame
    level, never under -75 dBFS: A-law's idle code is -72, and digital silence must not make
    that idle hiss look loud) and *quiet* under ``quiet_above_floor_db`` over it.
    """
    size = rate_hz * FRAME_MS // 1000
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    frames = samples.size // size
    if frames < 3:
        return pcm
    level = _levels(samples, size)
    floor = _floor(level)
    loud = level >= floor + above_floor_db
    quiet = level < floor + quiet_above_floor_db
    max_run, need = max_click_ms // FRAME_MS, quiet_ms // FRAME_MS
    out: np.ndarray | None = None
    i = 0
    while i < frames:
        if not loud[i]:
            i += 1
            continue
        j = i  # a run of frames that are not quiet, starting with a loud one
        while j < frames and not quiet[j]:
            j += 1
        before = quiet[max(0, i - need) : i].all()
        after = quiet[j : j + need].all()
        if j - i <= max_run and before and after:
            if out is None:
                out = samples.copy()
            out[i * size : j * size] = 0
        i = j
    return pcm if out is None else out.astype("<i2").tobytes() + pcm[samples.size * 2 :]
