"""A larger generated set to fit pocketsphinx's confidence model on (issue 14).

``SETS[("en", "dev")]`` (3 voices, 28 phrases) is where thresholds are chosen and
``SETS[("en", "test")]`` is held out; a model fitted on dev's ~300 decodes overfits it. This set
is for the fit only: several menus, every phrase of each, many out-of-grammar phrases (short
words, hesitations, near-misses such as "bell" on a menu with "bill"), many espeak-ng voices,
speeds and pitches, noise from clean to 10 dB, leading and trailing silence as the live path's
VAD leaves it, and half of it through an A-law (G.711) round trip as calls reach the server.

Nothing of the held-out test split is here: none of its out-of-grammar phrases, none of its
voices (``en-029``, the ``+m3`` and ``+f2`` variants are left out altogether). The bank menu's
own phrases are, as they are what any deployment calibrates with.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from ivr.speech.base import SpeechChoice
from support.speech_audio import Voice, alaw_round_trip, speech
from support.speech_sets import EN_MENU, EN_OOG_TEST, EN_TEST_VOICES

MENUS: tuple[tuple[SpeechChoice, ...], ...] = (
    EN_MENU,
    (  # `ivr stt --choices "billing|bill,agent|operator,sales"`
        SpeechChoice("billing", ("billing", "bill")),
        SpeechChoice("agent", ("agent", "operator")),
        SpeechChoice("sales", ("sales",)),
    ),
    (  # flows/voice.yaml
        SpeechChoice("1", ("sales", "buy")),
        SpeechChoice("2", ("support", "help")),
        SpeechChoice("0", ("agent", "operator", "person")),
    ),
    tuple(
        SpeechChoice(w, (w,))
        for w in ("lost card", "sales", "technical support", "billing", "agent", "three")
    ),
    (
        SpeechChoice("yes", ("yes", "yeah", "correct")),
        SpeechChoice("no", ("no", "nope", "wrong")),
    ),
)

OUT_OF_GRAMMAR = (
    # short words, hesitations and near-misses of menu words
    "bell",
    "sale",
    "agency",
    "ball",
    "pill",
    "tails",
    "urgent",
    "opera",
    "repair",
    "morning",
    "yellow",
    "nowhere",
    "offset",
    "costs",
    "stolen bike",
    "hi",
    "okay",
    "er",
    "ah",
    "oh",
    "hmm",
    "well",
    "right",
    "hang on",
    "sorry",
    "what",
    "excuse me",
    # other requests and chit-chat
    "pay my bill online",
    "I need a new cheque book",
    "how much do I owe",
    "speak slower please",
    "my card was swallowed by the machine",
    "increase my overdraft",
    "I want to open a business account",
    "is the bank open on sunday",
    "order a taxi",
    "where is my parcel",
    "the line is very bad",
    "I have a question about my statement",
    "please call me back tomorrow",
    "lunch time",
    "happy birthday",
    "the dog is barking",
    "nothing",
    "just a moment",
    "who am I speaking to",
    "pension",
    "student loan",
    "exchange rate",
    "direct debit",
)

_VOICE_NAMES = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-gb-x-rp",
    "en-us-nyc",
)
_VARIANTS = ("", "+m1", "+m2", "+m4", "+m5", "+m6", "+m7", "+f1", "+f3", "+f4", "+f5")
# (SNR dB or None, noise kind)
_NOISES: tuple[tuple[float | None, str], ...] = (
    (None, "white"),
    (None, "white"),
    (30.0, "white"),
    (25.0, "pink"),
    (20.0, "white"),
    (20.0, "pink"),
    (15.0, "white"),
    (15.0, "pink"),
    (10.0, "pink"),
)


@dataclass(frozen=True, slots=True)
class Utterance:
    """One calibration utterance: the menu, what is said, the key it must give (``None``:
    out of grammar) and how it is rendered."""

    menu: tuple[SpeechChoice, ...]
    phrase: str
    key: str | None
    voice: Voice
    snr_db: float | None
    noise: str
    alaw: bool
    lead_s: float
    tail_s: float
    seed: int

    @property
    def condition(self) -> str:
        base = "clean" if self.snr_db is None else f"{self.noise} {self.snr_db:g} dB"
        return base + (" a-law" if self.alaw else "")

    def pcm(self) -> bytes:
        """8 kHz 16-bit mono PCM, as :func:`support.speech_audio.speech` renders it."""
        pcm = speech(
            self.phrase,
            self.voice,
            snr_db=self.snr_db,
            noise=self.noise,
            seed=self.seed,
            lead_s=self.lead_s,
            tail_s=self.tail_s,
        )
        return alaw_round_trip(pcm) if self.alaw else pcm


def voices(count: int, seed: int = 14) -> list[Voice]:
    """``count`` voice variants (name, variant, speed 120-190 wpm, pitch 25-75); never a
    held-out test voice."""
    rng = random.Random(seed)
    held_out = {v.name for v in EN_TEST_VOICES}
    out: list[Voice] = []
    while len(out) < count:
        name = rng.choice(_VOICE_NAMES) + rng.choice(_VARIANTS)
        voice = Voice(name, rng.randrange(120, 191, 5), rng.randrange(25, 76, 5))
        if name not in held_out and voice not in out:
            out.append(voice)
    return out


def utterances(n_voices: int = 24, oog_per_menu: int = 10, seed: int = 14) -> Iterator[Utterance]:
    """The set: for each voice and menu, every phrase of the menu and ``oog_per_menu``
    out-of-grammar phrases, each in a random condition."""
    assert not set(OUT_OF_GRAMMAR) & set(EN_OOG_TEST)
    rng = random.Random(seed)
    for voice in voices(n_voices, seed):
        for menu in MENUS:
            said = [(p, c.key) for c in menu for p in c.phrases]
            said += [(p, None) for p in rng.sample(OUT_OF_GRAMMAR, oog_per_menu)]
            for phrase, key in said:
                snr_db, noise = rng.choice(_NOISES)
                yield Utterance(
                    menu,
                    phrase,
                    key,
                    voice,
                    snr_db,
                    noise,
                    alaw=rng.random() < 0.5,
                    lead_s=round(rng.uniform(0.1, 0.8), 2),
                    tail_s=round(rng.uniform(0.2, 0.8), 2),
                    seed=rng.randrange(1 << 30),
                )
