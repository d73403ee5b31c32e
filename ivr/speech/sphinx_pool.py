"""pocketsphinx decoding in worker processes, so a decode never stops the server's event loop.

pocketsphinx's Python binding keeps the GIL for the whole of a decode (two threads decoding
take twice one thread's time), so a decode on a speech thread also stops the event loop: no
call's AGI command, AudioSocket frame or timer moves until it ends (~20 ms for a grammar
decode, ~55 ms more for the phone decode of a doubtful answer; ``benchmarks/speech_loop_lag.py``
measures the loop's lateness both ways). :class:`PooledPocketsphinx` is the same engine with
each utterance's decode sent to a worker process: the speech thread waits for it without the
GIL, and with N workers N utterances decode at once on N cores.

Recorded messages' transcripts (:mod:`ivr.speech.transcribe`, seconds of decoding with the
language model) run in the workers too, through :meth:`PooledPocketsphinx.call`.

The decode in the worker is the very one a :class:`~ivr.speech.pocketsphinx.PocketsphinxEngine`
does in-thread (same options, same cleaning, same confidences); only the raw 8 kHz audio, the
choices and the grammar text travel (~64 KB for 4 s of speech). Workers are spawned (the
server has threads, so no fork), start with a grammar decoder and the phone decoder built,
and a worker that dies, or takes longer than a guard time, is replaced with the whole pool:
the utterances it held fail with a :class:`~ivr.errors.SpeechError`, the next ones get new
workers.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from ivr.errors import SpeechError
from ivr.speech.base import SAMPLE_RATE_HZ, Recognition, SpeechChoice, Thresholds
from ivr.speech.pocketsphinx import PocketsphinxEngine, PocketsphinxRecognizer

__all__ = ["PooledPocketsphinx"]

# A guard, not a budget: a 10 s utterance decodes in ~0.3 s and a busy pool queues a few.
RESULT_TIMEOUT_S = 30.0

T = TypeVar("T")

_engine: PocketsphinxEngine | None = None  # in a worker: its own engine


def _start_worker(options: dict[str, Any]) -> None:
    global _engine
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    _exit_with_parent()
    _engine = PocketsphinxEngine(**options)
    _engine.warm()


def _exit_with_parent() -> None:
    """End this worker when the server's process ends, however it ends: a server killed
    (SIGKILL, out of memory) would otherwise leave its workers waiting forever, as each
    worker holds the task queue's write end too, so the queue never reports the server gone."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="ivr-parent-watch", daemon=True).start()


def _ready() -> bool:
    return _engine is not None


def _decode(choices: list[SpeechChoice], jsgf: str, rate: int, pcm: bytes) -> Recognition:
    assert _engine is not None, "worker started without its engine"
    recognizer = PocketsphinxRecognizer(_engine, choices, jsgf, rate)
    recognizer.accept(pcm)
    return recognizer.result()


class PooledPocketsphinx:
    """A :class:`~ivr.speech.pocketsphinx.PocketsphinxEngine` (built from ``options``) whose
    decodes run in ``processes`` worker processes. :meth:`start` spawns them (blocking, ~0.5 s
    for two); :meth:`close` stops them."""

    name = "pocketsphinx"

    def __init__(self, processes: int, **options: Any) -> None:
        if processes < 1:
            raise ValueError("a decoding pool needs at least one process")
        self.processes = processes
        self.local = PocketsphinxEngine(**options)  # grammars and thresholds; never decodes
        self.thresholds: Thresholds = self.local.thresholds
        self.hmm: str | None = self.local.hmm
        self._options = options
        self._lock = threading.Lock()
        self._pool = self._new_pool()
        self.replaced = 0  # pools replaced after a worker crashed or hung

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self._options,),
        )

    def _spawn(self, pool: ProcessPoolExecutor) -> list[Future[bool]]:
        # One task per worker: the pool spawns a process for each task no idle one takes.
        return [pool.submit(_ready) for _ in range(self.processes)]

    def start(self) -> None:
        """Spawn every worker and wait until each has its decoders (a model that cannot load
        is a :class:`~ivr.errors.SpeechError` here, not in a caller's answer)."""
        try:
            for future in self._spawn(self._pool):
                future.result()
        except BrokenProcessPool:
            self.close()
            raise SpeechError(
                "pocketsphinx worker processes failed to start (their error is printed above; "
                "`ivr stt` with the same model decodes in this process)"
            ) from None

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (for tests and benchmarks)."""
        return sorted(self._pool._processes or ())

    def languages(self) -> frozenset[str]:
        """``{"en"}``, as the engine's."""
        return self.local.languages()

    def recognizer(
        self,
        choices: Sequence[SpeechChoice],
        language: str,
        *,
        input_rate_hz: int = SAMPLE_RATE_HZ,
    ) -> _PooledRecognizer:
        """A recogniser for one utterance; its decode runs in a worker."""
        local = self.local.recognizer(choices, language, input_rate_hz=input_rate_hz)
        return _PooledRecognizer(self, local)

    def decode(self, choices: list[SpeechChoice], jsgf: str, rate: int, pcm: bytes) -> Recognition:
        """One utterance's recognition from a worker (blocks; the GIL is free meanwhile)."""
        return self.call(_decode, choices, jsgf, rate, pcm)

    def call(self, fn: Callable[..., T], *args: Any, timeout_s: float = RESULT_TIMEOUT_S) -> T:
        """``fn(*args)`` in a worker (``fn`` a module-level function, ``args`` picklable),
        e.g. a recorded message's transcript; blocks, without the GIL, for at most
        ``timeout_s``."""
        pool = self._pool
        try:
            return pool.submit(fn, *args).result(timeout_s)
        except BrokenProcessPool:
            self._replace(pool)
            raise SpeechError(
                "a pocketsphinx worker process died while decoding; it has been replaced"
            ) from None
        except TimeoutError:
            # A stuck worker would hold its slot for good: replace the pool, kill its workers.
            self._replace(pool, kill=True)
            raise SpeechError(
                f"no pocketsphinx result within {timeout_s:.0f} s; the workers were replaced"
            ) from None

    def _replace(self, pool: ProcessPoolExecutor, *, kill: bool = False) -> None:
        with self._lock:
            if self._pool is not pool:
                return  # another thread replaced it already
            self._pool, self.replaced = self._new_pool(), self.replaced + 1
            self._spawn(self._pool)  # spawned and warmed now, not in the next answer
        processes = list((pool._processes or {}).values())  # no public way to reach them
        pool.shutdown(wait=False, cancel_futures=True)
        if kill:
            for process in processes:
                process.kill()

    def close(self) -> None:
        """Stop the workers (an utterance still decoding fails)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class _PooledRecognizer:
    """Collects one utterance's audio; :meth:`result` has a worker decode it."""

    def __init__(self, engine: PooledPocketsphinx, local: PocketsphinxRecognizer) -> None:
        self.engine = engine
        self.local = local  # its choices and grammar; its audio is sent, not decoded here
        self._chunks: list[bytes] = []

    def accept(self, pcm: bytes) -> None:
        """Feed PCM at the input rate (8 kHz unless told otherwise)."""
        self._chunks.append(pcm)

    def result(self) -> Recognition:
        """The worker's recognition of everything accepted."""
        local = self.local
        return self.engine.decode(
            local.choices, local.jsgf, local.input_rate_hz, b"".join(self._chunks)
        )
