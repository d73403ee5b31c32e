"""The port between the flow interpreter and a call.

The interpreter only ever talks to a :class:`Channel`. The FastAGI shell implements it over
Asterisk (``ivr.asterisk.agi.channel.AgiChannel``), ``ivr simulate`` and the tests implement it
in memory (``ivr.runtime.sim.ScriptedChannel``). Every method raises
:class:`ivr.errors.CallHangup` once the caller is gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

DTMF_DIGITS = "0123456789*#"

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(char: str, backslash: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that surrogateescape kept: show the byte
        return f"{backslash}x{code - 0xDC00:02x}"
    return f"{backslash}u{code:04x}"


def readable(text: str, *, in_json: bool = False) -> str:
    r"""``text`` with bytes that were not UTF-8 shown as ``\xe9``, for logs and records.

    Text from Asterisk (caller names, channel variables) is decoded with ``surrogateescape``
    so an old PBX's Latin-1 or GBK bytes survive the round trip back to Asterisk; but a UTF-8
    encoder (SQLite, a log file) refuses those surrogates. ``in_json`` doubles the backslash,
    for text that is already JSON (a surrogate can only sit inside one of its strings).

    >>> readable("Jos\udce9"), readable("José")
    ('Jos\\xe9', 'José')
    """
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    backslash = "\\\\" if in_json else "\\"
    return _SURROGATE.sub(lambda m: _escape(m.group(), backslash), text)


@dataclass(frozen=True, slots=True)
class Prompt:
    """One thing to play.

    ``file`` is a sound name as Asterisk's ``STREAM FILE`` takes it (no extension): either a
    name relative to the project's ``prompts/`` directory (``kind == "file"`` or ``"tts"``) or an
    Asterisk stock sound (``kind == "sound"``). ``text`` is what the caller hears, for logs and
    for ``ivr simulate``.
    """

    kind: str  # "tts" | "file" | "sound"
    file: str
    text: str = ""
    language: str = "en"


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the interpreter knows about the call when it starts."""

    uniqueid: str
    caller_id: str = ""
    caller_name: str = ""
    dnis: str = ""
    channel: str = ""
    language: str = "en"
    args: tuple[str, ...] = ()
    params: dict[str, str] = field(default_factory=dict)


class Channel(Protocol):
    """Async operations on one live call. Digits returned are always in ``[0-9*#]``."""

    info: CallInfo

    async def answer(self) -> None:
        """Answer the call (no-op when already answered)."""

    async def play(self, prompts: list[Prompt], escape_digits: str = "") -> str:
        """Play prompts in order; stop at the first escape digit and return it, else ``""``."""

    async def wait_for_digit(self, timeout_s: float) -> str:
        """Wait up to ``timeout_s`` for one DTMF digit; ``""`` on timeout."""

    async def say_digits(self, digits: str, escape_digits: str = "") -> str:
        """Speak a digit string one digit at a time; returns an escape digit or ``""``."""

    async def say_number(self, number: int, escape_digits: str = "") -> str:
        """Speak an integer as a number; returns an escape digit or ``""``."""

    async def say_date(self, epoch_s: int, escape_digits: str = "") -> str:
        """Speak a date given as Unix time; returns an escape digit or ``""``."""

    async def get_variable(self, name: str) -> str | None:
        """Read a channel variable (``None`` when unset)."""

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable."""

    async def exec(self, application: str, args: str = "") -> int:
        """Run a dialplan application (e.g. ``Dial``) and return its result code."""

    async def hangup(self) -> None:
        """Hang the call up."""

    async def listen(self, request: ListenRequest) -> Heard:
        """Play prompts while listening for a spoken choice or a key (speech menus)."""

    async def record(self, request: RecordRequest) -> Recorded:
        """Record the caller into ``request.file`` (``.wav``) until a key, silence or the
        longest time; raises :class:`~ivr.errors.CallHangup` if they hang up meanwhile (what
        they said is in the file all the same)."""


@dataclass(frozen=True, slots=True)
class ListenRequest:
    """Play prompts and listen for a spoken choice (and keys) at the same time."""

    prompts: list[Prompt]
    choices: tuple[tuple[str, tuple[str, ...]], ...]  # (option key, phrases)
    language: str = "en"
    dtmf: bool = True  # keys are accepted too
    barge_in: bool = True  # speech or a key stops the prompt
    min_speech_ms: int = 300  # speech shorter than this does not stop the prompt
    no_input_timeout_s: float = 5.0  # after the prompt ends
    max_speech_s: float = 10.0  # an utterance is cut off after this
    # accept / confirm / reject (ivr.speech.decision): None keeps the engine's calibrated value
    min_confidence: float | None = None
    accept_confidence: float | None = None
    confirm: str = "auto"  # auto | always | never: ask "did you say ...?" in the middle band
    # where it is asked, for logs and kept utterances (ivr.speech.keep): flow and node names
    flow: str = ""
    node: str = ""


@dataclass(frozen=True, slots=True)
class Heard:
    """What came back from :meth:`Channel.listen`."""

    kind: str  # "dtmf" | "speech" | "no_input" | "no_match"
    value: str = ""  # the key pressed or the words recognised
    choice: str | None = None  # the option key chosen (dtmf: the key itself)
    confidence: float = 0.0
    prompt_played_ms: int = 0  # how much of the prompt the caller heard (barge-in)
    confirm: bool = False  # speech: the choice is not sure enough; ask the caller first


@dataclass(frozen=True, slots=True)
class RecordRequest:
    """Record the caller (a message) into ``file``: an absolute path without its extension,
    made by the server (never from caller input), that Asterisk can write."""

    file: str
    escape_digits: str = "#"  # a key that ends the message
    max_s: float = 120.0
    silence_s: int = 0  # this much silence ends it (0: off)
    beep: bool = True


@dataclass(frozen=True, slots=True)
class Recorded:
    """How a recording ended: ``"key"`` (``key`` pressed), ``"silence"`` (Asterisk cut the
    silence but its last second), ``"max"`` (the longest time)."""

    duration_s: float  # the file's length, as Asterisk reports it
    ended: str  # "key" | "silence" | "max"
    key: str = ""

    @property
    def voice_s(self) -> float:
        """The length without the second of silence Asterisk keeps when silence ends it."""
        return max(0.0, self.duration_s - (1.0 if self.ended == "silence" else 0.0))
