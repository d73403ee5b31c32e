"""A flow's speech menu as recogniser input: its choices and languages (for ``ivr stt``).

The choices are built as the running menu builds them (``ivr.runtime.inputs``): one per option
with ``words``, keyed by the option's key, its words as the phrases.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.errors import SpeechError
from ivr.flow import model as m
from ivr.flow.loader import load_flow
from ivr.speech.base import SpeechChoice


@dataclass(frozen=True, slots=True)
class SpeechMenu:
    """One speech menu of a flow file: what a caller can say there, and in which languages."""

    file: str
    node: str
    choices: tuple[SpeechChoice, ...]
    targets: dict[str, str]  # option key -> the node it goes to
    language: str  # the flow's default language (a call starts in it)
    languages: tuple[str, ...]  # every language the flow speaks
    min_confidence: float | None = None  # the menu's own thresholds (None: the engine's)
    accept_confidence: float | None = None
    confirm: str = "auto"


def speech_menu(flow: m.Flow, node_id: str) -> SpeechMenu:
    """The speech menu ``node_id`` of ``flow``; :class:`SpeechError` naming the file and node
    when there is no such node or it is not a menu with speech input."""
    node = flow.nodes.get(node_id)
    where = f"{flow.file}: node {node_id!r}"
    if node is None:
        menus = sorted(n.id for n in flow.nodes.values() if _is_speech_menu(n))
        raise SpeechError(f"{where} does not exist (speech menus: {', '.join(menus) or 'none'})")
    if not isinstance(node, m.MenuNode):
        raise SpeechError(f"{where} is a {node.kind} node, not a speech menu")
    if not _is_speech_menu(node):
        raise SpeechError(f"{where} is a menu without speech input (input: {list(node.inputs)})")
    options = [(key, opt) for key, opt in node.options.items() if opt.words]
    return SpeechMenu(
        file=flow.file,
        node=node_id,
        choices=tuple(SpeechChoice(key, opt.words) for key, opt in options),
        targets={key: opt.target for key, opt in options},
        language=flow.language,
        languages=flow.languages,
        min_confidence=node.min_confidence,
        accept_confidence=node.accept_confidence,
        confirm=node.confirm_mode,
    )


def load_speech_menu(path: str, node_id: str) -> SpeechMenu:
    """Load the flow file at ``path`` (raises its :class:`FlowErrors`) and take one menu."""
    return speech_menu(load_flow(path), node_id)


def _is_speech_menu(node: m.FlowNode) -> bool:
    return isinstance(node, m.MenuNode) and node.speech
