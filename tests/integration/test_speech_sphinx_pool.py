"""pocketsphinx decoding in worker processes (:mod:`ivr.speech.sphinx_pool`): the same
recognitions as in-thread decoding, real processes that come back after a crash and stop with
the service, and the setting that chooses them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.speech_audio import ENGLISH_VOICES, have_espeak, speech, write_wav

pytest.importorskip("pocketsphinx")
pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")

from ivr.config import Settings, load_settings  # noqa: E402
from ivr.errors import ConfigError, SpeechError  # noqa: E402
from ivr.speech.base import SpeechChoice  # noqa: E402
from ivr.speech.engines import make_engine  # noqa: E402
from ivr.speech.pocketsphinx import PocketsphinxEngine  # noqa: E402
from ivr.speech.service import SpeechService  # noqa: E402
from ivr.speech.sphinx_pool import PooledPocketsphinx  # noqa: E402
from ivr.speech.transcribe import transcribe  # noqa: E402

WORDS = ("lost card", "sales", "technical support", "billing", "agent")
MENU = [SpeechChoice(w, (w,)) for w in WORDS]


@pytest.fixture(scope="module")
def pooled() -> PooledPocketsphinx:
    made = make_engine("pocketsphinx", processes=2)
    assert isinstance(made, PooledPocketsphinx)
    yield made
    made.close()


def workers(engine: PooledPocketsphinx) -> list[int]:
    return engine.worker_pids()


def utterances() -> list[bytes]:
    said = [speech(w, voice) for w in WORDS for voice in ENGLISH_VOICES[:2]]
    # out of the grammar: a doubtful answer takes the phone decode as well
    return [*said, speech("pizza delivery please"), speech("my card was stolen")]


def test_the_workers_decode_what_a_thread_decodes(pooled: PooledPocketsphinx) -> None:
    in_thread = PocketsphinxEngine()
    for pcm in utterances():
        local, remote = in_thread.recognizer(MENU, "en"), pooled.recognizer(MENU, "en")
        for i in range(0, len(pcm), 320):
            local.accept(pcm[i : i + 320])
            remote.accept(pcm[i : i + 320])
        assert remote.result() == local.result()
    assert pooled.thresholds == in_thread.thresholds
    assert len(workers(pooled)) == 2 and os.getpid() not in workers(pooled)


async def test_decodes_run_side_by_side_off_the_servers_process(
    pooled: PooledPocketsphinx,
) -> None:
    pcm = speech("technical support")

    def decode() -> str | None:
        rec = pooled.recognizer(MENU, "en")
        rec.accept(pcm)
        return rec.result().choice

    loop = asyncio.get_running_loop()
    started = time.process_time()
    choices = await asyncio.gather(*(loop.run_in_executor(None, decode) for _ in range(6)))
    assert choices == ["technical support"] * 6
    # The decoding CPU is spent in the workers: this process only ships the audio.
    in_thread = PocketsphinxEngine()
    spent_here = time.process_time() - started
    one = time.process_time()
    rec = in_thread.recognizer(MENU, "en")
    rec.accept(pcm)
    assert rec.result().choice == "technical support"
    one_decode = time.process_time() - one
    assert spent_here < one_decode * 6 / 3, (spent_here, one_decode)


def test_messages_are_transcribed_in_the_workers(
    pooled: PooledPocketsphinx, tmp_path: Path
) -> None:
    said = tmp_path / "said.wav"
    write_wav(str(said), speech("please call me back tomorrow morning"))

    def workers_cpu() -> float:
        return sum(
            sum(map(int, Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[11:13]))
            for pid in workers(pooled)
        )

    before = workers_cpu()
    text = transcribe(pooled, said)
    assert text.split() and text == transcribe(PocketsphinxEngine(), said)
    assert workers_cpu() - before >= 10  # clock ticks: the language-model decode ran there


def test_a_worker_that_dies_is_replaced(pooled: PooledPocketsphinx) -> None:
    victim = workers(pooled)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    failed = False
    while True:  # the pool notices the death on its next use
        rec = pooled.recognizer(MENU, "en")
        rec.accept(speech("billing"))
        try:
            assert rec.result().choice == "billing"
            if failed:
                break
        except SpeechError as exc:
            assert "worker process died" in str(exc)
            failed = True
        assert time.monotonic() < deadline, "the dead worker was never noticed"
    assert pooled.replaced >= 1
    assert victim not in workers(pooled)


def test_a_stuck_worker_is_killed_and_replaced(pooled: PooledPocketsphinx) -> None:
    stuck = pooled.worker_pids()
    replaced = pooled.replaced
    with pytest.raises(SpeechError, match="no pocketsphinx result within 1 s"):
        pooled.call(time.sleep, 120, timeout_s=1)
    rec = pooled.recognizer(MENU, "en")
    rec.accept(speech("agent"))
    assert rec.result().choice == "agent"
    assert pooled.replaced == replaced + 1
    assert not set(stuck) & set(pooled.worker_pids())
    for pid in stuck:  # killed, not left sleeping
        with pytest.raises(ProcessLookupError):
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)


async def test_the_service_starts_and_stops_its_workers(tmp_path: Path) -> None:
    settings = Settings().speech
    service = SpeechService(settings.__class__(port=0, pocketsphinx_processes=1), tmp_path)
    await service.start()
    try:
        engine = service.engines["en"]
        assert isinstance(engine, PooledPocketsphinx)
        [pid] = workers(engine)
        os.kill(pid, 0)  # alive
        health = await service.recogniser_health()
        assert (health.status, health.detail) == ("up", "en=pocketsphinx (1 decoding processes)")
        os.kill(pid, signal.SIGKILL)  # a crash: the next answer fails, the pool is replaced
        rec = engine.recognizer(MENU, "en")
        rec.accept(speech("sales"))
        with pytest.raises(SpeechError):
            rec.result()
        health = await service.recogniser_health()
        assert health.detail == "en=pocketsphinx (1 decoding processes, replaced 1x)"
        [pid] = workers(engine)  # the new worker, stopped by close() below
    finally:
        await service.close()
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # reaped by the executor's shutdown
            os.kill(pid, 0)
            time.sleep(0.1)


def test_the_workers_end_with_a_killed_server() -> None:
    """A server killed outright (SIGKILL, out of memory) leaves no decoding worker behind."""
    script = (
        "from ivr.speech.engines import make_engine\n"
        "e = make_engine('pocketsphinx', processes=2)\n"
        "print(*e.worker_pids(), flush=True)\n"
        "import time; time.sleep(120)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        pids = [int(p) for p in server.stdout.readline().split()]
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, 0)  # alive while the server is
        server.kill()
        server.wait(10)
        deadline = time.monotonic() + 10
        alive = set(pids)
        while alive and time.monotonic() < deadline:
            for pid in list(alive):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    alive.discard(pid)
            time.sleep(0.1)
        assert not alive, f"workers left running: {sorted(alive)}"
    finally:
        if server.poll() is None:
            server.kill()


def test_zero_processes_decode_in_threads_and_bad_counts_are_refused(tmp_path: Path) -> None:
    assert isinstance(make_engine("pocketsphinx", processes=0), PocketsphinxEngine)
    config = tmp_path / "ivr.yaml"
    config.write_text("speech:\n  pocketsphinx_processes: -1\n")
    with pytest.raises(ConfigError, match=r"pocketsphinx_processes.*not a process count"):
        load_settings(config)
    config.write_text("speech:\n  pocketsphinx_processes: 0\n")
    assert load_settings(config).speech.pocketsphinx_processes == 0
    assert Settings().speech.pocketsphinx_processes == 2
