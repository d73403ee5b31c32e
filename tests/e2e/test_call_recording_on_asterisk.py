"""Call recording through the real Asterisk: a queue with ``record:`` says the consent prompt,
then ``MixMonitor`` records the conversation with the agent (a ``Local/10XX@agents`` member
that answers, waits half a second, says hello-world and hangs up) into the lab's recordings
directory, which the chroot shares with the server at the same path.

The caller (SIPp) sends no audio but its keys, so the sound in the file is the agent's: its
loudness, tenth of a second by tenth, follows hello-world's.
A caller who presses 9 during the prompt is not recorded.
"""

from __future__ import annotations

import array
import asyncio
import subprocess
import time
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from helpers import Records, dial, spec, wait_until_idle
from serve import IvrServe

from ivr.lab import Lab

pytestmark = [pytest.mark.asterisk]

# The dialplan's extension 200 runs the flow named "bank": here, a queue and nothing else.
FLOW = """\
flow: bank
start: agent
nodes:
  agent:
    queue:
      name: default
      timeout_s: 30
      record:
        consent: "This call may be recorded. To refuse, press 9."
        wait_s: 1
      when_unavailable: hangup
      when_timeout: hangup
    next: hangup
"""


@pytest.fixture(scope="module")
def recording_server(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IvrServe]:
    workdir = tmp_path_factory.mktemp("ivr-recording")
    flows = workdir / "flows"
    flows.mkdir()
    (flows / "bank.yaml").write_text(FLOW, encoding="utf-8")
    server = IvrServe(
        workdir,
        http_base_url="http://127.0.0.1:9",  # no http node
        ami_secret=lab.ami_secret,
        flows_dir=flows,
        name="ivr-serve-recording",
        settings={"recordings_dir": str(lab.paths.recordings)},
    )
    yield from server.serving()


@pytest.fixture
async def records(lab: Lab, recording_server: IvrServe) -> Records:
    rec = Records(recording_server)
    await rec.snapshot()
    return rec


@pytest.fixture(autouse=True)
async def idle_afterwards(lab: Lab, recording_server: IvrServe) -> AsyncIterator[None]:
    yield
    channels, _ = await wait_until_idle(lab, timeout_s=5)
    if not channels.startswith("0 active channels"):
        lab.cli("channel request hangup all")
    assert recording_server.running, f"ivr serve died; log: {recording_server.log_path}"


def read_wav(path: Path) -> tuple[int, array.array[int]]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2), "16-bit mono (Asterisk's wav)"
        return w.getframerate(), array.array("h", w.readframes(w.getnframes()))


def envelope(samples: array.array[int], rate: int) -> list[float]:
    """RMS per tenth of a second."""
    step = rate // 10
    return [
        (sum(x * x for x in samples[i : i + step]) / step) ** 0.5
        for i in range(0, len(samples) - step + 1, step)
    ]


def correlation(a: list[float], b: list[float]) -> float:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = sum((x - ma) ** 2 for x in a) ** 0.5
    vb = sum((y - mb) ** 2 for y in b) ** 0.5
    return cov / (va * vb)


def agent_sound(lab: Lab, tmp_path: Path) -> tuple[int, array.array[int]]:
    """What the agent says (the dialplan's Playback(hello-world)), decoded by sox."""
    [gsm] = (lab.paths.root / "usr/share/asterisk/sounds").glob("*/hello-world.gsm")
    out = tmp_path / "hello-world.wav"
    subprocess.run(["sox", str(gsm), "-e", "signed-integer", "-b", "16", str(out)], check=True)
    return read_wav(out)


async def wait_for_file(path: Path, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.stat().st_size > 44):
        assert time.monotonic() < deadline, f"no recording at {path}"
        await asyncio.sleep(0.2)


async def test_a_recorded_call_has_the_agents_voice_in_its_file(
    lab: Lab, records: Records, recording_server: IvrServe, tmp_path: Path
) -> None:
    result = await dial(lab, spec("200", hold_s=40, expect_hangup=True))
    assert result.ok, result
    record = await records.one()
    assert record.queue is not None and record.queue.result == "answered", record.queue
    assert record.recording == f"calls/{record.call_id}.wav"
    assert not [i for i in record.inputs if i.kind == "recording_refused"]
    path = lab.paths.recordings / record.recording
    await wait_for_file(path)
    rate, samples = read_wav(path)
    agent_rate, said = agent_sound(lab, tmp_path)
    assert rate == agent_rate == 8000
    # option b: only while bridged, so the file is what the agent said (hello-world), not the
    # consent prompt before it nor anything after the agent hung up
    assert abs(len(samples) - len(said)) / rate < 0.3, (len(samples) / rate, len(said) / rate)
    heard = envelope(samples, rate)
    assert max(heard) > 2000, heard  # not silence
    assert correlation(heard, envelope(said, rate)) > 0.9, heard


async def test_the_caller_who_presses_9_is_not_recorded(
    lab: Lab, records: Records, recording_server: IvrServe
) -> None:
    before = set((lab.paths.recordings / "calls").glob("*.wav"))
    call = spec("200", "9", first_digit_after_s=1.5, hold_s=40, expect_hangup=True)
    result = await dial(lab, call)
    assert result.ok, result
    record = await records.one()
    assert record.queue is not None and record.queue.result == "answered", record.queue
    assert record.recording == ""
    assert [(i.kind, i.value) for i in record.inputs] == [("recording_refused", "9")]
    assert set((lab.paths.recordings / "calls").glob("*.wav")) == before
