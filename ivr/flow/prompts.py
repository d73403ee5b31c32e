"""Prompt specs: YAML prompt values -> :class:`PromptSpec`, and TTS file naming.

Text is rendered by TTS ahead of time, so it must be static. A ``{var:format}`` inside text is
split out and spoken by Asterisk at run time (``SAY DIGITS``/``SAY NUMBER``/...).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, cast, get_args

from ivr.errors import ExpressionError, PromptSpecError
from ivr.flow.model_values import PromptSpec, SayFormat, SayValue, Speech
from ivr.flow.template import parse_template

SAY_FORMATS: tuple[str, ...] = get_args(SayFormat)
_SAY_KEYS = frozenset(SAY_FORMATS)
_PUNCTUATION = " .,;:!?-\u3002\uff0c\u3001\uff01\uff1f\uff1b\uff1a"  # ASCII and CJK


@functools.lru_cache(maxsize=4096)  # asked on every playback of a text prompt
def tts_file(text: str, language: str) -> str:
    """Sound name (relative to ``prompts/``, no extension) of a text prompt's rendering."""
    digest = hashlib.sha256(f"{language}\0{text}".encode()).hexdigest()[:16]
    return f"tts/{language}/{digest}"


def parse_prompt(value: Any, default_language: str) -> PromptSpec:
    """Build a :class:`PromptSpec` from a schema-valid YAML prompt value."""
    items = value if isinstance(value, list) else [value]
    languages = {default_language}
    for item in items:
        if isinstance(item, dict) and not (item.keys() & {"file", "sound", "text", *_SAY_KEYS}):
            languages.update(item)
        elif isinstance(item, dict) and isinstance(item.get("file"), dict):
            languages.update(item["file"])
    by_language: dict[str, tuple[Speech | SayValue, ...]] = {}
    for lang in sorted(languages):
        parts: list[Speech | SayValue] = []
        for i, item in enumerate(items):
            where: tuple[str | int, ...] = (i,) if isinstance(value, list) else ()
            parts.extend(_parts(item, lang, default_language, where))
        by_language[lang] = tuple(parts)
    if default_language not in by_language or not by_language[default_language]:
        raise PromptSpecError(f"the prompt has no '{default_language}' text")
    return PromptSpec(parts_by_language=by_language, default_language=default_language)


def _parts(
    item: Any, lang: str, default: str, where: tuple[str | int, ...]
) -> list[Speech | SayValue]:
    if isinstance(item, str):
        return split_text(item, default, where)
    assert isinstance(item, dict)
    if "sound" in item:
        return [Speech("sound", item["sound"], lang)]
    if "text" in item:
        return split_text(item["text"], item["language"], (*where, "text"))
    if "file" in item:
        f = item["file"]
        if isinstance(f, str):
            return [Speech("file", f, lang)]
        if lang in f:
            return [Speech("file", f[lang], lang)]
        if default not in f:
            raise PromptSpecError(f"the file prompt has no '{default}' variant", (*where, "file"))
        return [Speech("file", f[default], default)]
    for fmt in SAY_FORMATS:
        if fmt in item:
            return [SayValue(_variable(item[fmt], (*where, fmt)), cast(SayFormat, fmt))]
    if lang in item:
        return split_text(item[lang], lang, (*where, lang))
    if default not in item:
        raise PromptSpecError(f"the text has no '{default}' variant", where)
    return split_text(item[default], default, (*where, default))


def _variable(text: str, where: tuple[str | int, ...]) -> str:
    name = text.strip()
    if name.startswith("{") and name.endswith("}"):
        name = name[1:-1].strip()
    if not name.isidentifier():
        raise PromptSpecError(f"'{text}' is not a variable; write it as {{name}}", where)
    return name


def split_text(
    text: str, language: str, where: tuple[str | int, ...] = ()
) -> list[Speech | SayValue]:
    """``"Your balance is {balance:currency}."`` -> text, a spoken value, text."""
    try:
        template = parse_template(text)
    except ExpressionError as exc:
        raise PromptSpecError(f"bad placeholder in {text!r}: {exc}", where) from None
    out: list[Speech | SayValue] = []
    for part in template.parts:
        if isinstance(part, str):
            text = " ".join(part.split()).lstrip(_PUNCTUATION).strip()
            if text.strip(_PUNCTUATION):
                out.append(Speech("text", text, language))
        elif part.format in _SAY_KEYS:
            out.append(SayValue(part.name, cast(SayFormat, part.format)))
        else:
            name = part.name
            raise PromptSpecError(
                f"say how to speak {{{name}}}: {{{name}:digits}}, {{{name}:number}}, "
                f"{{{name}:currency}} or {{{name}:date}} (text is rendered ahead of time)",
                where,
            )
    return out
