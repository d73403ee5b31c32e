"""A caller leaves a message through the real Asterisk (``RECORD FILE`` into the lab's
recordings directory, which the chroot and the server share at one path): the caller
speaks after the beep (RTP from SIPp), silence ends the message, and they hang up at the
confirm prompt. The WAV holds their voice (its length, and the energy where they spoke
against the quiet end); the server stored the message with that length.

The flow is the bank's own ``leave_message`` node, served on extension 400 as a flow of
its own: a SIPp call cannot both key digits (pcaps) and then speak (``rtp_stream``) on one
RTP session the lab's Asterisk accepts (strictrtp locks onto the pcaps' stream), so the
bank's way there (closed, 1 at the offer) is tested by ``ivr simulate`` in
tests/integration/test_cli.py and this test needs no key.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import Records, dial, seconds, sound
from serve import ROOT, BalanceStub, IvrServe
from support.speech_audio import silence, speech, write_wav

from ivr.flow.library import load_library
from ivr.flow.record_node import RecordNode
from ivr.lab import CallSpec, Lab

pytestmark = [pytest.mark.asterisk]

SAID = "Hello, this is a test message. Please call me back tomorrow morning about my card."


def voicemail_flows(directory: Path) -> Path:
    """flows/voice.yaml (extension 400) = the bank's leave_message node and what follows."""
    bank = yaml.safe_load((ROOT / "flows/bank.yaml").read_text(encoding="utf-8"))
    keep = ("leave_message", "message_left", "goodbye")
    flow = {
        "flow": "voice",
        "language": "en",
        "languages": ["en", "zh"],
        "start": "leave_message",
        "nodes": {name: bank["nodes"][name] for name in keep},
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "voice.yaml").write_text(yaml.safe_dump(flow, allow_unicode=True), "utf-8")
    return directory


@pytest.fixture(scope="module")
def voicemail_server(
    lab: Lab, balance_stub: BalanceStub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IvrServe]:
    work = tmp_path_factory.mktemp("ivr-serve-messages")
    server = IvrServe(
        work,
        http_base_url=balance_stub.base_url,
        ami_secret=lab.ami_secret,
        name="ivr-serve-messages",
        flows_dir=voicemail_flows(work / "flows"),
        settings={"recordings_dir": str(lab.paths.recordings)},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def message_rows(server: IvrServe) -> list[sqlite3.Row]:
    with sqlite3.connect(server.db_path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM messages ORDER BY id").fetchall()


async def test_a_caller_leaves_a_message_with_their_voice(
    lab: Lab, voicemail_server: IvrServe, tmp_path: Path
) -> None:
    leave = (
        load_library([str(voicemail_server.flows_dir)], None).flows["voice"].nodes["leave_message"]
    )
    assert isinstance(leave, RecordNode)
    records = Records(voicemail_server)
    await records.snapshot()
    voice = speech(SAID)
    voice_s = len(voice) / 2 / 8000
    caller_wav = tmp_path / "caller.wav"
    # the voice, then silence on the line (RTP keeps flowing: with none, Asterisk hears no
    # silence), then a hang-up while the confirm prompt plays
    write_wav(str(caller_wav), voice + silence(leave.silence_s + 3.0))
    call = CallSpec(
        ext="400",
        wav=caller_wav,
        voice_after_s=seconds(sound(leave.prompt)) + 1.5,  # after the prompt and the beep
        hold_s=voice_s + leave.silence_s + 4.5,
        expect_hangup=False,
    )
    result = await dial(lab, call)
    assert result.ok, result
    [record] = await records.new(1, timeout_s=20)
    assert record.path == ["leave_message"], record.path
    recorded = [i for i in record.inputs if i.kind == "record"]
    assert len(recorded) == 1 and recorded[0].value.endswith("silence"), record.inputs
    deadline = time.monotonic() + 20
    while not (rows := message_rows(voicemail_server)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    [row] = [r for r in rows if r["call_id"] == record.call_id]
    assert (row["flow"], row["node"], row["language"]) == ("voice", "leave_message", "en")
    assert row["file"] == f"messages/{record.call_id}-leave_message-1.wav"
    with wave.open(str(lab.paths.recordings / row["file"])) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    length_s = len(samples) / 8000
    # the voice, then the one second of silence Asterisk keeps when silence ends it
    assert voice_s - 0.5 <= length_s <= voice_s + 2.5, (length_s, voice_s)
    assert abs(row["duration_s"] - length_s) < 0.05
    window = 1600  # 200 ms
    energy = [
        float(np.sqrt(np.mean(samples[i : i + window] ** 2)))
        for i in range(0, len(samples) - window, window)
    ]
    loud = [e for e in energy if e > 300]
    assert len(loud) * 0.2 >= voice_s * 0.5, energy  # most of their words are in it
    assert min(energy[-3:]) < max(energy) / 10, energy  # and it ends quiet
