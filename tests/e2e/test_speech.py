"""Spoken choices through the real Asterisk: SIPp streams espeak-ng speech as RTP (A-law),
Asterisk's AudioSocket() carries it to ``ivr serve``, pocketsphinx picks the option.

flows/voice.yaml (extension 400) is the speech menu. Every test checks the call record; the
barge-in test also reads, from the server's log, how much of the prompt was streamed before
the caller's words stopped it, against the prompt's real length.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import wave
from pathlib import Path

import pytest
from helpers import Records, dial, seconds, sound
from serve import ROOT, IvrServe
from support.speech_audio import silence, speech, write_wav

from ivr.flow import model as m
from ivr.flow.confirm_words import ANSWER_WORDS
from ivr.flow.library import load_library
from ivr.flow.model import Flow
from ivr.lab import CallSpec, Lab

pytestmark = [pytest.mark.asterisk, pytest.mark.usefixtures("no_leftover_calls")]

AGENT = "Local/1001@agents"
YES_WORDS = ANSWER_WORDS["en"][0]


@pytest.fixture(scope="module")
def voice_flow() -> Flow:
    return load_library([str(ROOT / "flows")], None).flows["voice"]


def menu_prompt_s(flow: Flow) -> float:
    menu = flow.nodes["menu"]
    assert isinstance(menu, m.MenuNode)
    return seconds(sound(menu.prompt))


def caller_voice(tmp_path: Path, *parts: bytes) -> Path:
    path = tmp_path / "caller.wav"
    write_wav(str(path), b"".join(parts))
    return path


def heard_lines(server: IvrServe, call_id: str, since: int) -> list[tuple[str, int, int]]:
    """``(kind, prompt ms streamed, prompt ms in all)`` of each listen on one call."""
    log = server.log_text(since)
    uuids = re.findall(rf"\[{re.escape(call_id)}\].* -> EXEC AudioSocket ([0-9a-f-]+),", log)
    out = []
    for key in uuids:
        found = re.search(rf"\[{key}\] heard (\w+) after (\d+) of (\d+) ms of prompt", log)
        assert found, f"no result logged for AudioSocket session {key}"
        out.append((found.group(1), int(found.group(2)), int(found.group(3))))
    return out


def kept_utterances(server: IvrServe, call_id: str, timeout_s: float = 5) -> list[Path]:
    """The sidecars of the utterances kept for one call (written in the background)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", call_id)
    deadline = time.monotonic() + timeout_s
    while True:
        found = sorted((server.workdir / "recordings/utterances").glob(f"*-{safe}-*.json"))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def voice_call(wav: Path, *, after_s: float, digits: str = "") -> CallSpec:
    return CallSpec(
        ext="400",
        wav=wav,
        voice_after_s=after_s,
        digits=tuple(digits),
        first_digit_after_s=after_s,
        hold_s=30,
        expect_hangup=True,
    )


async def test_spoken_choice_after_the_prompt(
    lab: Lab, records: Records, ivr_server: IvrServe, voice_flow: Flow, tmp_path: Path
) -> None:
    log_from = ivr_server.log_size()
    prompt_s = menu_prompt_s(voice_flow)
    # SIPp's 200 OK is ~0.5 s before the prompt starts; speak 1 s after it ends
    result = await dial(
        lab, voice_call(caller_voice(tmp_path, speech("support")), after_s=prompt_s + 1.5)
    )
    assert result.ok, result
    record = await records.one()
    assert record.flow == "voice" and record.path == ["menu", "support", "goodbye"]
    assert [(i.node, i.kind, i.value) for i in record.inputs] == [("menu", "speech", "support")]
    assert record.outcome == "self_service"
    [(kind, streamed_ms, prompt_ms)] = heard_lines(ivr_server, record.call_id, log_from)
    assert kind == "speech" and streamed_ms == prompt_ms  # the whole prompt played
    assert abs(prompt_ms / 1000 - prompt_s) < 0.05
    # speech.keep_utterances (on for this server): the audio the recogniser got, and its result
    [kept] = kept_utterances(ivr_server, record.call_id)
    sidecar = json.loads(kept.read_text(encoding="utf-8"))
    assert (sidecar["flow"], sidecar["node"], sidecar["choice"]) == ("voice", "menu", "2")
    assert sidecar["verdict"] != "reject" and sidecar["duration_ms"] > 500
    with wave.open(str(kept.with_name(kept.name.replace(".json", ".wav"))), "rb") as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        assert w.getnframes() == sidecar["duration_ms"] * 8


async def test_speech_over_the_prompt_barges_in(
    lab: Lab, records: Records, ivr_server: IvrServe, voice_flow: Flow, tmp_path: Path
) -> None:
    log_from = ivr_server.log_size()
    result = await dial(lab, voice_call(caller_voice(tmp_path, speech("agent")), after_s=1.5))
    assert result.ok, result
    record = await records.one()
    assert [(i.node, i.kind, i.value) for i in record.inputs] == [("menu", "speech", "agent")]
    assert record.outcome == "transferred" and record.transfer_target == AGENT
    [(kind, streamed_ms, prompt_ms)] = heard_lines(ivr_server, record.call_id, log_from)
    assert kind == "speech"
    # the words start ~1 s into the prompt (+ espeak's lead-in); the prompt stops within
    # min_speech_ms (250) + the VAD's start (100) + network, far before its end
    assert 800 <= streamed_ms <= 2500, streamed_ms
    assert prompt_ms - streamed_ms > 2500, (streamed_ms, prompt_ms)


async def test_a_key_still_works_on_a_speech_menu(
    lab: Lab, records: Records, ivr_server: IvrServe
) -> None:
    log_from = ivr_server.log_size()
    result = await dial(
        lab,
        CallSpec(ext="400", digits=("1",), first_digit_after_s=2.0, hold_s=30, expect_hangup=True),
    )
    assert result.ok, result
    record = await records.one()
    assert [(i.node, i.kind, i.value) for i in record.inputs] == [("menu", "dtmf", "1")]
    assert record.path == ["menu", "sales", "goodbye"]
    [(kind, streamed_ms, prompt_ms)] = heard_lines(ivr_server, record.call_id, log_from)
    assert kind == "dtmf" and streamed_ms < prompt_ms


async def test_silence_then_a_spoken_choice_on_the_retry(
    lab: Lab, records: Records, ivr_server: IvrServe, voice_flow: Flow, tmp_path: Path
) -> None:
    # (Out-of-grammar speech: tests/e2e/test_speech_rejection_on_asterisk.py.)
    log_from = ivr_server.log_size()
    prompt_s = menu_prompt_s(voice_flow)
    menu = voice_flow.nodes["menu"]
    assert isinstance(menu, m.MenuNode)
    question = menu.options["1"].confirm_prompt
    assert question is not None
    # nothing during the prompt and its 4 s timeout; "sales" over the retry prompts; "yes"
    # once "Did you say sales?" has played, if the menu was unsure enough to ask it (a short
    # word over a prompt: measured 0.58, confirmed) -- else it falls on the goodbye
    voice = speech("sales") + silence(seconds(sound(question)) + 1.5) + speech("yes")
    result = await dial(
        lab, voice_call(caller_voice(tmp_path, voice), after_s=prompt_s + 0.5 + 4 + 1.5)
    )
    assert result.ok, result
    record = await records.one()
    # what the menu made of "sales", as kept (speech.keep_utterances) for this call
    sidecar = json.loads(kept_utterances(ivr_server, record.call_id)[0].read_text())
    assert (sidecar["choice"], sidecar["verdict"]) in (("1", "accept"), ("1", "confirm"))
    asked = sidecar["verdict"] == "confirm"
    inputs = [(i.node, i.kind, i.value) for i in record.inputs]
    assert inputs[:2] == [("menu", "no_input", ""), ("menu", "speech", "sales")]
    assert [(kind, value in YES_WORDS) for _, kind, value in inputs[2:]] == (
        [("confirm", True)] if asked else []
    )
    assert record.path == ["menu", "sales", "goodbye"] and record.outcome == "self_service"
    assert [k for k, _, _ in heard_lines(ivr_server, record.call_id, log_from)] == [
        "no_input",
        "speech",
        *(["speech"] if asked else []),
    ]


def decoding_workers(server: IvrServe) -> list[int]:
    """The pocketsphinx worker processes of ``ivr serve`` (its spawned children)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # gone meanwhile
        if ppid == server.pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return sorted(found)


async def test_a_dead_decoding_worker_costs_one_retry_not_the_call(
    lab: Lab, records: Records, ivr_server: IvrServe, voice_flow: Flow, tmp_path: Path
) -> None:
    """pocketsphinx decodes in worker processes: with one killed, the caller's first answer
    is heard as not understood, the retry's answer is decoded by the replaced workers."""
    log_from = ivr_server.log_size()
    workers = decoding_workers(ivr_server)
    assert len(workers) == 2, workers  # speech.pocketsphinx_processes: 2 (the default)
    os.kill(workers[0], signal.SIGKILL)
    prompt_s = menu_prompt_s(voice_flow)
    # "support" after the prompt, then again over the "not understood" retry prompt
    voice = speech("support") + silence(2.5) + speech("support")
    result = await dial(lab, voice_call(caller_voice(tmp_path, voice), after_s=prompt_s + 1.5))
    assert result.ok, result
    record = await records.one()
    assert [(i.node, i.kind, i.value) for i in record.inputs] == [
        ("menu", "no_match", ""),
        ("menu", "speech", "support"),
    ]
    assert record.path == ["menu", "support", "goodbye"] and record.outcome == "self_service"
    log = ivr_server.log_text(log_from)
    assert "recogniser failed, heard as no match: a pocketsphinx worker process died" in log
    assert [k for k, _, _ in heard_lines(ivr_server, record.call_id, log_from)] == [
        "no_match",
        "speech",
    ]
    replaced = decoding_workers(ivr_server)
    assert len(replaced) == 2 and not set(replaced) & set(workers)
