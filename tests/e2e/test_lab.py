"""The lab itself, proven with a real Asterisk and SIPp and no project server.

A tiny FastAGI handler written here answers on 127.0.0.1:4573, as ``ivr serve`` will.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivr.asterisk.ami.boxes import AmiBoxes
from ivr.config import AmiSettings, Secret
from ivr.lab import Lab, chroot
from ivr.lab.paths import SOUNDS_SUBDIR

pytestmark = pytest.mark.asterisk

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


@dataclass
class AgiSession:
    """What the inline handler saw on one FastAGI connection."""

    env: dict[str, str] = field(default_factory=dict)
    replies: dict[str, str] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: str) -> str:
    writer.write(command.encode() + b"\n")
    await writer.drain()
    return (await reader.readline()).decode().strip()


def _handler(session: AgiSession, commands: list[str]):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := (await reader.readline()).decode().strip():
                key, _, value = line.partition(": ")
                session.env[key] = value
            for command in commands:
                session.replies[command] = await _command(reader, writer, command)
        finally:
            writer.close()  # Asterisk keeps the socket open after HANGUP until we close
            session.done.set()

    return handle


async def test_fastagi_call_gets_env_digit_and_prompt(lab: Lab) -> None:
    # A prompt rendered into prompts/tts/en must play as "ivr/tts/en/<name>".
    name = f"lab-selftest-{uuid.uuid4().hex[:8]}"
    wav = PROMPTS / "tts" / "en" / f"{name}.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    wav.write_bytes(_sine_wav_8k(seconds=0.5))
    commands = [
        "ANSWER",
        "WAIT FOR DIGIT 8000",  # SIPp sends "7" one second after the 200 OK
        f'STREAM FILE ivr/tts/en/{name} ""',
        'STREAM FILE ivr/tts/en/no-such-prompt ""',
        "HANGUP",
    ]
    session = AgiSession()
    server = await asyncio.start_server(_handler(session, commands), "127.0.0.1", 4573)
    try:
        result = await asyncio.to_thread(lab.call, "100", digits="7", hold_s=15, expect_hangup=True)
        await asyncio.wait_for(session.done.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()
        wav.unlink(missing_ok=True)

    assert result.ok, result
    assert session.env["agi_network_script"] == "main"
    assert session.env["agi_callerid"] == "sipp"
    assert session.env["agi_extension"] == "s"
    assert session.env["agi_uniqueid"]
    assert session.replies["ANSWER"] == "200 result=0"
    assert session.replies["WAIT FOR DIGIT 8000"] == f"200 result={ord('7')}"
    assert session.replies[commands[2]] == "200 result=0 endpos=4000"  # 0.5 s at 8 kHz
    assert session.replies[commands[3]].startswith("200 result=-1")
    assert session.replies["HANGUP"] == "200 result=1"


async def test_server_down_falls_back_to_default_queue(lab: Lab) -> None:
    queue_log_start = lab.log_size("queue_log")
    messages_start = lab.log_size("messages.log")
    # nothing listens on 4573: the dialplan apologises, queues the caller, a simulated agent
    # answers, says hello-world and hangs up, which ends the call
    result = await asyncio.to_thread(lab.call, "200", hold_s=30, expect_hangup=True)
    assert result.ok, result
    warning = lab.wait_for_log(
        "IVR flow bank at 127.0.0.1:4573 did not finish", since=messages_start
    )
    assert "AGISTATUS=FAILURE" in warning
    enter = lab.wait_for_log("|ENTERQUEUE|", name="queue_log", since=queue_log_start)
    assert "|default|" in enter
    connect = lab.wait_for_log("|CONNECT|", name="queue_log", since=queue_log_start)
    assert "|default|Agent 100" in connect
    for _ in range(50):  # the caller's and the agent's channels are gone shortly after BYE
        if lab.cli("core show channels count").startswith("0 active channels"):
            break
        await asyncio.sleep(0.1)
    assert lab.cli("core show channels count").startswith("0 active channels")


def test_cli_shows_project_config(lab: Lab) -> None:
    assert "Transport:  udp-test" in lab.cli("pjsip show transports")
    dialplan = lab.cli("dialplan show inbound")
    for ext in ("'100'", "'200'", "'300'"):
        assert ext in dialplan
    assert "Local/1001@agents/n" in lab.cli("queue show default")
    manager = lab.cli("manager show user ivr")
    write = next(line for line in manager.splitlines() if "write perm:" in line)
    assert set(write.split(":", 1)[1].strip().split(",")) == {"call", "originate", "reporting"}
    assert "secret: <Set>" in manager


def test_up_rebinds_prompts_left_from_another_checkout(lab: Lab, tmp_path: Path) -> None:
    # Mounts outlive a session's processes: a lab started from another clone must not keep
    # playing that clone's prompts/ (CI once got "200 result=-1" for a prompt written here).
    sounds = lab.paths.root / SOUNDS_SUBDIR
    other = tmp_path / "prompts"
    other.mkdir()
    (other / "stale-marker").touch()
    try:
        subprocess.run(["umount", str(sounds)], check=True)
        subprocess.run(["mount", "--bind", str(other), str(sounds)], check=True)
        assert (sounds / "stale-marker").exists()
        assert lab.up() == "already running, config reloaded"
        assert not (sounds / "stale-marker").exists()
        assert os.stat(sounds).st_ino == os.stat(PROMPTS).st_ino
        assert lab.status().mounts.count(sounds) == 1
    finally:
        chroot.mount_all(lab.paths)


def _sine_wav_8k(seconds: float) -> bytes:
    import io
    import math
    import struct
    import wave

    frames = int(8000 * seconds)
    samples = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(frames)
    )
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(samples)
    return buf.getvalue()


def test_the_dialplan_loads_without_a_warning(lab: Lab) -> None:
    """A ';' in an application's arguments starts a comment and cuts the line: Asterisk
    only warns, and the call runs the truncated step. Every line must parse."""
    since = lab.log_size()
    assert "Dialplan reloaded" in lab.cli("dialplan reload")  # parsed before it answers
    warnings = [
        line
        for line in lab.log_path().read_text(errors="replace")[since:].splitlines()
        if "pbx_config.c" in line and ("WARNING" in line or "ERROR" in line)
    ]
    assert warnings == []


async def test_a_box_is_checked_against_the_systemname_asterisk_reports(lab: Lab) -> None:
    """The real CoreSettings answer: the lab's Asterisk has no systemname, so as box
    "lab" of several it must not be used (its uniqueids could repeat another box's)."""
    settings = AmiSettings(boxes=("lab@127.0.0.1:5038",), secret=Secret(lab.ami_secret.encode()))
    boxes = AmiBoxes(settings)
    await boxes.start()
    try:
        assert boxes.clients["lab"].up
        [settings_reply, *_] = await boxes.clients["lab"].action("CoreSettings")
        assert "SystemName" in settings_reply  # the field the check reads
        health = await boxes.health()
        assert health.status == "down"
        assert "its systemname is '', not 'lab'" in health.detail
        assert not boxes.up
    finally:
        await boxes.close()
