"""Grammars from menu choices, and recognised text back to a choice key.

Both engines are restricted to the menu's phrases: pocketsphinx gets a JSGF grammar
(:func:`jsgf`), Vosk a JSON phrase list (:func:`vosk_phrases`). What the engine hears is then
mapped to a choice by :func:`match`: phrases are compared after :func:`normalise` (lowercase,
no punctuation, English digits spelt out), filler words ("uh", "please", "I want") are ignored,
and the longest phrase found wins.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ivr.speech.base import SpeechChoice


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


DIGITS_EN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Words callers wrap around a menu phrase; ignored when matching (English).
FILLERS_EN = frozenset(
    _words(
        "uh um er erm ah hmm please i want id like would to the a an my and yes oh "
        "need get give me talk speak with"
    )
)
# Prefixes / suffixes the pocketsphinx grammar lets a caller say around a phrase.
JSGF_PREFIXES = ("uh", "um", "i want", "i'd like", "i need", "i want to", "i'd like to")
JSGF_SUFFIXES = ("please",)
# Out-of-grammar absorber for pocketsphinx: common short English words covering most
# phonemes. Speech that is none of the choices decodes as a run of these (choice None).
GARBAGE_EN = _words(
    "the of to and in is it you that he was for on are with as his they be at have this from "
    "or had by hot word but what some we can out other were all there when up use your how said "
    "an each she which do their time if will way about many then them write would like so these "
    "her long make thing see him has look more day could go come did number sound no most "
    "people my over know water than call first who may down side been now find"
)
# Hesitations: said alone they are no choice. The pocketsphinx grammar offers them (and the
# model's spoken-noise filler) as a rival to the choices, so "uh" is not forced onto "no".
HESITATIONS_EN = _words("uh um er ah hmm")
_PUNCT = re.compile(r"[^\w\s']|_")


def normalise(text: str, language: str = "en") -> str:
    """Lowercase, punctuation removed, whitespace collapsed; for English, digits spelt out.

    >>> normalise("Press 1, please!")
    'press one please'
    """
    text = unicodedata.normalize("NFC", text).lower()
    text = _PUNCT.sub(" ", text).replace("'", "" if language != "en" else "'")
    if language == "en":
        text = re.sub(r"\d", lambda m: f" {DIGITS_EN[int(m.group())]} ", text)
        text = " ".join(w.strip("'") for w in text.split())
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Match:
    """A choice found in recognised text: its key, the phrase that matched, and how much of
    the text (in words, fillers excluded) the phrase covers (0..1)."""

    key: str
    phrase: str
    coverage: float


def _phrases(choices: Sequence[SpeechChoice], language: str) -> list[tuple[str, str]]:
    out = [(normalise(p, language), c.key) for c in choices for p in c.phrases]
    return [(p, k) for p, k in out if p]


def match(text: str, choices: Sequence[SpeechChoice], language: str = "en") -> Match | None:
    """The choice ``text`` names, or ``None``.

    The longest normalised phrase occurring in ``text`` on word boundaries wins. For English,
    the rest of the text must be filler words (``FILLERS_EN``) or another phrase of the same
    choice: "uh sales please" and "I want billing" match, "sales or billing" does not (two
    different choices), nor does "weather sales forecast".
    """
    words = normalise(text, language).split()
    if not words:
        return None
    found: list[tuple[int, int, str, str]] = []  # (start, end, phrase, key)
    for phrase, key in _phrases(choices, language):
        pw = phrase.split()
        for i in range(len(words) - len(pw) + 1):
            if words[i : i + len(pw)] == pw:
                found.append((i, i + len(pw), phrase, key))
    if not found:
        return None
    best = max(found, key=lambda f: (f[1] - f[0], -f[0]))
    covered = [False] * len(words)
    for start, end, _, key in found:
        if key != best[3]:
            if not (end <= best[0] or start >= best[1]):
                continue  # overlaps the winner: a shorter reading of the same words
            return None  # another choice named too: ambiguous
        for i in range(start, end):
            covered[i] = True
    rest = [w for w, c in zip(words, covered, strict=True) if not c]
    if language == "en" and any(w not in FILLERS_EN for w in rest):
        return None
    content = sum(covered) + len(rest if language != "en" else [])
    return Match(best[3], best[2], sum(covered) / max(content, 1))


def vocabulary(choices: Sequence[SpeechChoice], language: str = "en") -> list[str]:
    """Every distinct word of the choices' normalised phrases, in order of appearance."""
    seen: dict[str, None] = {}
    for phrase, _ in _phrases(choices, language):
        for word in phrase.split():
            seen.setdefault(word, None)
    return list(seen)


def vosk_phrases(
    choices: Sequence[SpeechChoice], language: str = "en", *, unk: bool = True
) -> list[str]:
    """The JSON grammar list for a Vosk recogniser: each normalised phrase, plus ``"[unk]"``
    (which lets out-of-grammar speech decode as unknown) when ``unk`` is true -- pass false
    for models whose vocabulary lacks it, as the small Korean model does."""
    phrases = list(dict.fromkeys(p for p, _ in _phrases(choices, language)))
    return [*phrases, "[unk]"] if unk else phrases


def _alternatives(items: Iterable[str]) -> str:
    return " | ".join(dict.fromkeys(items))


def jsgf(
    choices: Sequence[SpeechChoice],
    language: str = "en",
    *,
    garbage: Sequence[str] = GARBAGE_EN,
    garbage_weight: float = 1.0,
    fillers: bool = True,
    rivals: Sequence[str] = (),
    rival_weight: float = 1e-10,
) -> str:
    """A JSGF grammar for pocketsphinx accepting one choice phrase.

    With ``fillers`` the phrase may be preceded by "uh" / "I want" ... and followed by
    "please". With ``garbage`` (words not in any phrase are kept), out-of-grammar speech has
    a path of its own, ``<garbage>+``, weighted ``garbage_weight`` against 1.0 for the choices
    -- lower rejects less. Without it, every sound is forced onto a phrase. With ``rivals``
    (words not in any phrase are kept), the whole utterance may instead be one of these
    words, weighted ``rival_weight``: a decode that ends there names no choice.

    >>> print(jsgf([SpeechChoice("1", ("Sales",))], garbage=(), fillers=False))
    #JSGF V1.0;
    grammar menu;
    <choice> = ( sales );
    public <utterance> = <choice>;
    """
    phrases = [p for p, _ in _phrases(choices, language)]
    if not phrases:
        raise ValueError("a grammar needs at least one non-empty phrase")
    lines = ["#JSGF V1.0;", "grammar menu;", f"<choice> = ( {_alternatives(phrases)} );"]
    body = "<choice>"
    if fillers and language == "en":
        lines.append(f"<pre> = ( {_alternatives(JSGF_PREFIXES)} );")
        lines.append(f"<post> = ( {_alternatives(JSGF_SUFFIXES)} );")
        body = "[ <pre> ] <choice> [ <post> ]"
    vocab = set(vocabulary(choices, language))
    junk = [w for w in garbage if w not in vocab]
    if junk:
        lines.append(f"<garbage> = ( {_alternatives(junk)} );")
        body = f"/1.0/ {body} | /{garbage_weight:g}/ <garbage>+"
    rival = [w for w in rivals if w not in vocab]
    if rival:
        lines.append(f"<rival> = ( {_alternatives(rival)} );")
        body = f"/1.0/ {body} | /{rival_weight:g}/ <rival>"
    lines.append(f"public <utterance> = {body};")
    return "\n".join(lines) + "\n"
