"""What a speech menu says and hears when it confirms a choice ("Did you say lost card?").

A menu confirms a spoken choice the recogniser was not sure of (``confirm: auto``) or every
spoken choice (``confirm: always``). The question is the menu's ``confirm_prompt`` (or the
default below for its languages) with ``{choice}`` replaced by the option's first word, one
prompt per option, so it is rendered ahead of time like every other text prompt. The caller
answers by voice (the words below) or by key: 1 for yes, 2 for no.
"""

from __future__ import annotations

from typing import Any

CHOICE = "{choice}"
YES_KEY, NO_KEY = "1", "2"
DEFAULT_PROMPTS = {
    "en": "Did you say {choice}? Say yes or no, or press 1 for yes and 2 for no.",
    "zh": "您是说{choice}吗？请说是或不是，或者按1确认，按2重新选择。",  # noqa: RUF001
    "ko": "{choice} 맞습니까? 네 또는 아니오로 말씀하시거나, 맞으면 1번, 아니면 2번을 누르세요.",
}
# (yes words, no words) per language; English words are in pocketsphinx's dictionary. No
# near-homophones of one answer: with "yeah" beside "yes", a live "yes" decoded as "yeah" with
# confidence 0.07-0.44 (rejected or confirmed again), as "yes" alone with 0.94-0.99; "nope"
# beside "no" took a live "no" from 0.78-0.85 to 0.51.
ANSWER_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (("yes", "correct", "right"), ("no", "wrong")),
    "zh": (("是", "对", "是的"), ("不是", "不对")),
    "ko": (("네", "예", "맞아요"), ("아니오", "아니요")),
}


def answer_choices(language: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The yes / no choices of the confirmation, as a listen request's ``(key, phrases)``."""
    yes, no = ANSWER_WORDS.get(language, ANSWER_WORDS["en"])
    return ((YES_KEY, yes), (NO_KEY, no))


def default_prompt(languages: set[str], default_language: str) -> dict[str, str]:
    """The default question for these languages (English where none is known)."""
    out = {lang: DEFAULT_PROMPTS[lang] for lang in sorted(languages) if lang in DEFAULT_PROMPTS}
    out.setdefault(default_language, DEFAULT_PROMPTS["en"])
    return out


def with_choice(value: Any, word: str) -> Any:
    """A YAML prompt value with every ``{choice}`` in its texts replaced by ``word``."""
    if isinstance(value, str):
        return value.replace(CHOICE, word)
    if isinstance(value, list):
        return [with_choice(v, word) for v in value]
    if isinstance(value, dict):
        return {k: with_choice(v, word) for k, v in value.items()}
    return value
