"""How late the server's event loop runs while callers' answers are decoded by pocketsphinx:
in the decoding threads (``speech.pocketsphinx_processes: 0``) against worker processes (1, 2).

pocketsphinx keeps the GIL for a whole decode, so a decode in a thread stops the event loop,
and with it every call's AGI commands, AudioSocket frames and timers. This script runs what
the speech service runs, in one asyncio process: ``--streams`` callers at once, each speaking
``--utterances`` answers in real time (20 ms frames fed on the loop, as the AudioSocket side
does), each answer's ``result()`` awaited through a 2-thread executor (``speech.workers``).
Meanwhile a ticker sleeps 5 ms at a time and records how late each wake-up comes: that
lateness is what any other call on the node waits. Reported per mode: the loop's lateness
(p50, p99, max), each answer's decode latency after its last frame (p50, p95), the CPU of
this process and of the workers per answer, and the ratios against the in-thread baseline
run in the same script.

Answers: espeak-ng speech of the bank menu's phrases (two voices) and two out-of-grammar
requests, which take the phone decode too (doubtful answers do).

Run (from the repository root)::

    .venv/bin/python benchmarks/speech_loop_lag.py              # 10 streams, ~1.5 min
    .venv/bin/python benchmarks/speech_loop_lag.py --streams 24 --utterances 4
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.speech_audio import ENGLISH_VOICES, silence, speech
from support.speech_sets import EN_MENU

from ivr.speech.base import FRAME_BYTES, SpeechEngine
from ivr.speech.engines import make_engine
from ivr.speech.sphinx_pool import PooledPocketsphinx

TICK_S = 0.005
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    label: str
    lateness_ms: list[float]
    latency_ms: list[float]
    cpu_here_s: float
    cpu_workers_s: float

    def per_answer_ms(self, seconds: float) -> float:
        return 1000 * seconds / len(self.latency_ms)


def answers() -> list[bytes]:
    phrases = [phrase for choice in EN_MENU for phrase in choice.phrases[:1]]
    said = [speech(p, v) for p in phrases for v in ENGLISH_VOICES[:2]]
    said += [speech("pizza delivery please"), speech("can you tell me the weather")]
    pad = silence(0.3)
    return [pad + pcm + pad for pcm in said]


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def run(
    label: str, engine: SpeechEngine, clips: list[bytes], streams: int, count: int
) -> Run:
    loop = asyncio.get_running_loop()
    executor = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="speech")
    lateness: list[float] = []
    latency: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            due = loop.time() + TICK_S
            await asyncio.sleep(TICK_S)
            lateness.append(1000 * (loop.time() - due))

    async def caller(index: int) -> None:
        await asyncio.sleep(0.37 * index / streams)  # out of phase, like real calls
        for n in range(count):
            pcm = clips[(index * 7 + n) % len(clips)]
            rec = engine.recognizer(EN_MENU, "en")
            start = loop.time()
            for k, i in enumerate(range(0, len(pcm), FRAME_BYTES)):
                await asyncio.sleep(max(0.0, start + k * 0.02 - loop.time()))
                rec.accept(pcm[i : i + FRAME_BYTES])
            last = loop.time()
            await loop.run_in_executor(executor, rec.result)
            latency.append(1000 * (loop.time() - last))

    pool_pids = engine.worker_pids() if isinstance(engine, PooledPocketsphinx) else []
    workers_before = sum(cpu_of(p) for p in pool_pids)
    here_before = time.process_time()
    tick = asyncio.create_task(ticker())
    await asyncio.gather(*(caller(i) for i in range(streams)))
    done.set()
    await tick
    cpu_here = time.process_time() - here_before
    cpu_workers = sum(cpu_of(p) for p in pool_pids) - workers_before
    executor.shutdown()
    return Run(label, lateness, latency, cpu_here, cpu_workers)


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(runs: list[Run]) -> None:
    base = runs[0]
    print(
        f"{'mode':<22}{'lag p50':>9}{'lag p99':>9}{'lag max':>9}"
        f"{'decode p50':>12}{'decode p95':>12}{'CPU here':>10}{'CPU workers':>13}"
    )
    print(f"{'':<22}{'ms':>9}{'ms':>9}{'ms':>9}{'ms':>12}{'ms':>12}{'ms/ans':>10}{'ms/ans':>13}")
    for r in runs:
        print(
            f"{r.label:<22}{statistics.median(r.lateness_ms):9.2f}{pct(r.lateness_ms, 0.99):9.1f}"
            f"{max(r.lateness_ms):9.1f}{statistics.median(r.latency_ms):12.1f}"
            f"{pct(r.latency_ms, 0.95):12.1f}{r.per_answer_ms(r.cpu_here_s):10.1f}"
            f"{r.per_answer_ms(r.cpu_workers_s):13.1f}"
        )
    for r in runs[1:]:
        print(
            f"{r.label} / {base.label}: loop lag p99 "
            f"{pct(r.lateness_ms, 0.99) / pct(base.lateness_ms, 0.99):.2f}x, max "
            f"{max(r.lateness_ms) / max(base.lateness_ms):.2f}x; decode p95 "
            f"{pct(r.latency_ms, 0.95) / pct(base.latency_ms, 0.95):.2f}x"
        )


async def main_async(args: argparse.Namespace) -> None:
    clips = answers()
    print(
        f"{args.streams} callers at once, {args.utterances} answers each "
        f"({len(clips)} different answers, {sum(map(len, clips)) / 16000 / len(clips):.1f} s "
        f"on average); the loop's lateness sampled every {TICK_S * 1000:.0f} ms; "
        f"{os.cpu_count()} cores"
    )
    runs = []
    for processes in (0, *args.processes):
        engine = make_engine("pocketsphinx", processes=processes)
        label = "in threads" if processes == 0 else f"{processes} process" + "es" * (processes > 1)
        warm = engine.recognizer(EN_MENU, "en")
        warm.accept(clips[0])
        warm.result()  # the in-thread engine builds its first decoders here
        runs.append(await run(label, engine, clips, args.streams, args.utterances))
        if isinstance(engine, PooledPocketsphinx):
            engine.close()
    report(runs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--streams", type=int, default=10, help="callers at once (10)")
    parser.add_argument("--utterances", type=int, default=6, help="answers per caller (6)")
    parser.add_argument(
        "--processes", type=int, nargs="*", default=[1, 2], help="pool sizes to compare (1 2)"
    )
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
