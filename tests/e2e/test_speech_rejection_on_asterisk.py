"""Out-of-grammar speech and confirmation through the real Asterisk (issue 14): SIPp streams
espeak-ng speech as RTP, Asterisk's AudioSocket() carries it to ``ivr serve``, pocketsphinx
decodes it with its calibrated thresholds.

The server runs flows/voice.yaml (extension 400) as shipped, except that its menu accepts a
spoken choice at once only from confidence 1.0 (``accept_confidence: 1.0``): every choice that
is not rejected is then in the middle band, so the menu must ask "Did you say ...?" -- the
same path a medium-confidence answer takes, made certain for the test. The rejection threshold
stays the engine's calibrated one.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
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

YES_WORDS, NO_WORDS = ANSWER_WORDS["en"]
pytestmark = [pytest.mark.asterisk, pytest.mark.usefixtures("no_leftover_calls")]


@pytest.fixture(scope="module")
def flows_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("flows") / "flows"
    shutil.copytree(ROOT / "flows", out)
    voice = out / "voice.yaml"
    text = voice.read_text(encoding="utf-8")
    assert "      barge_in: true\n" in text
    voice.write_text(
        text.replace(
            "      barge_in: true\n", "      barge_in: true\n      accept_confidence: 1.0\n"
        ),
        encoding="utf-8",
    )
    return out


@pytest.fixture(scope="module")
def ivr_server(
    lab: Lab, flows_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IvrServe]:
    """This module's own ``ivr serve`` (the flows above) on the port the dialplan dials."""
    server = IvrServe(
        tmp_path_factory.mktemp("ivr-serve"),
        http_base_url="http://127.0.0.1:9",  # voice.yaml makes no HTTP request
        ami_secret=lab.ami_secret,
        flows_dir=flows_dir,
        name="ivr-serve-speech-rejection",
        settings={"speech": {"keep_utterances": True}},  # recordings/utterances: for tuning
    )
    yield from server.serving()


@pytest.fixture(scope="module")
def menu(flows_dir: Path) -> m.MenuNode:
    flow: Flow = load_library([str(flows_dir)], None).flows["voice"]
    node = flow.nodes["menu"]
    assert isinstance(node, m.MenuNode) and node.accept_confidence == 1.0
    return node


def voice_call(tmp_path: Path, pcm: bytes, after_s: float) -> CallSpec:
    path = tmp_path / "caller.wav"
    write_wav(str(path), pcm)
    return CallSpec(ext="400", wav=path, voice_after_s=after_s, hold_s=40, expect_hangup=True)


async def test_something_else_takes_the_no_match_path(
    lab: Lab, records: Records, menu: m.MenuNode, tmp_path: Path
) -> None:
    prompt_s = seconds(sound(menu.prompt))
    retry_s = seconds(sound(menu.no_match.prompt)) + seconds(sound(menu.short_prompt))
    question = menu.options["1"].confirm_prompt
    assert question is not None
    # not a choice, after the prompt; "sales" once the retry prompts have played, and "yes"
    # once "Did you say sales?" has
    voice = (
        speech("pizza delivery please")
        + silence(retry_s + 1.5)
        + speech("sales")
        + silence(seconds(sound(question)) + 1.5)
        + speech("yes")
    )
    result = await dial(lab, voice_call(tmp_path, voice, after_s=prompt_s + 1.5))
    assert result.ok, result
    record = await records.one()
    assert [(i.node, i.kind) for i in record.inputs] == [
        ("menu", "no_match"),  # not sent down a wrong branch
        ("menu", "speech"),
        ("menu", "confirm"),
    ], record.inputs
    assert record.inputs[1].value == "sales"
    assert record.inputs[2].value in YES_WORDS
    assert record.path == ["menu", "sales", "goodbye"]


async def test_an_unsure_choice_is_confirmed_by_voice(
    lab: Lab, records: Records, menu: m.MenuNode, tmp_path: Path
) -> None:
    prompt_s = seconds(sound(menu.prompt))
    question = menu.options["2"].confirm_prompt
    assert question is not None
    question_s = seconds(sound(question))
    # "support" after the prompt; "yes" once "Did you say support? ..." has played
    said = speech("support")
    voice = said + silence(question_s + 1.5) + speech("yes")
    result = await dial(lab, voice_call(tmp_path, voice, after_s=prompt_s + 1.5))
    assert result.ok, result
    record = await records.one()
    assert [(i.node, i.kind, i.value) for i in record.inputs][:1] == [("menu", "speech", "support")]
    assert [(i.kind, i.value in YES_WORDS) for i in record.inputs[1:]] == [("confirm", True)]
    assert record.path == ["menu", "support", "goodbye"] and record.outcome == "self_service"


async def test_no_at_the_question_asks_the_menu_again(
    lab: Lab, records: Records, menu: m.MenuNode, tmp_path: Path
) -> None:
    prompt_s = seconds(sound(menu.prompt))
    support, sales = menu.options["2"].confirm_prompt, menu.options["1"].confirm_prompt
    assert support is not None and sales is not None
    # "support"; "no" to "Did you say support?"; "sales" once the short prompt has played;
    # "yes" to "Did you say sales?"
    voice = (
        speech("support")
        + silence(seconds(sound(support)) + 1.5)
        + speech("no")
        + silence(seconds(sound(menu.short_prompt)) + 1.5)
        + speech("sales")
        + silence(seconds(sound(sales)) + 1.5)
        + speech("yes")
    )
    result = await dial(lab, voice_call(tmp_path, voice, after_s=prompt_s + 1.5))
    assert result.ok, result
    record = await records.one()
    said = [(i.kind, i.value) for i in record.inputs]
    assert [kind for kind, _ in said] == ["speech", "confirm", "speech", "confirm"], said
    assert said[0] == ("speech", "support") and said[1][1] in NO_WORDS
    assert said[2] == ("speech", "sales") and said[3][1] in YES_WORDS
    # the caller said "support" was not what they wanted: it never ran
    assert record.path == ["menu", "sales", "goodbye"]
