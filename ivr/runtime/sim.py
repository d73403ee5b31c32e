"""An in-memory call: the :class:`Channel` behind ``ivr simulate`` and the interpreter tests.

The caller is a list of tokens: digits (``1``, ``12345678#``), ``wait`` (let one prompt time
out), a dial result for the next transfer or queue (``answer``, ``busy``, ``noanswer``,
``chanunavail``), ``hold:<key>`` (a key pressed during a queue's hold music), ``hangup``;
``say:<words>`` answers speech menus (``unsure:<words>``: heard, but not surely enough, so the
menu asks "Did you say ...?" unless it never confirms), ``talk:<seconds>`` leaves a message
at a record node (ended by silence, or by the end key given next). When the script runs out,
the caller hangs up, or, interactively, the next token is asked for.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ivr.call.channel import (
    DTMF_DIGITS,
    CallInfo,
    Heard,
    ListenRequest,
    Prompt,
    Recorded,
    RecordRequest,
)
from ivr.errors import CallHangup, HttpLookupError, SimulationInputError
from ivr.runtime.queueing import EXIT_CONTEXT

DIAL_RESULTS = {
    "answer": "ANSWER",
    "busy": "BUSY",
    "noanswer": "NOANSWER",
    "chanunavail": "CHANUNAVAIL",
    "congestion": "CONGESTION",
}
# Queue(): how waiting ends for a dial-result token (QUEUESTATUS; CONTINUE = an agent talked)
QUEUE_RESULTS = {
    "answer": "CONTINUE",
    "noanswer": "TIMEOUT",
    "busy": "TIMEOUT",
    "chanunavail": "JOINEMPTY",
    "congestion": "JOINUNAVAIL",
}
_ids = itertools.count(1)


def parse_tokens(text: str) -> list[str]:
    """``"1, 2,wait,say:billing"`` -> ``["1", "2", "wait", "say:billing"]``."""
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    for tok in tokens:
        if not (
            _spoken(tok) is not None
            or _talk_seconds(tok) is not None
            or tok.lower() in ("wait", "hangup", *DIAL_RESULTS)
            or all(c in DTMF_DIGITS for c in tok)
            or _hold_key(tok)
        ):
            raise SimulationInputError(
                f"'{tok}' is not a caller action: use digits (0-9 * #), wait, hangup, "
                f"say:<words>, unsure:<words>, talk:<seconds>, hold:<key>, or a dial result "
                f"({', '.join(DIAL_RESULTS)})"
            )
    return tokens


def _spoken(tok: str) -> tuple[str, bool] | None:
    """``say:sales`` -> ``("sales", False)``, ``unsure:sales`` -> ``("sales", True)``."""
    for prefix, unsure in (("say:", False), ("unsure:", True)):
        if tok.startswith(prefix):
            return tok[len(prefix) :].strip(), unsure
    return None


def _talk_seconds(tok: str) -> float | None:
    """``talk:12.5`` -> ``12.5``: a message that long; else ``None``."""
    if not tok.startswith("talk:"):
        return None
    try:
        seconds = float(tok[5:])
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86400 else None


def _hold_key(tok: str) -> str:
    """``hold:1`` -> ``"1"``: the key pressed while waiting in a queue; else ``""``."""
    key = tok.removeprefix("hold:")
    return key if tok.startswith("hold:") and len(key) == 1 and key in DTMF_DIGITS else ""


class SimClock:
    """Virtual time: starts at ``start`` and moves only when the caller is waited for."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class ScriptedChannel:
    """A :class:`ivr.call.channel.Channel` driven by caller tokens; records what the caller
    heard."""

    tokens: Iterable[str] = ()
    info: CallInfo = field(default_factory=lambda: CallInfo(uniqueid=f"sim-{next(_ids)}"))
    clock: SimClock | None = None
    ask: Callable[[], str | None] | None = None  # interactive: returns more tokens, None = EOF
    emit: Callable[[str], None] = lambda line: None
    variables: dict[str, str] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)
    answered: bool = False
    hung_up: bool = False

    def __post_init__(self) -> None:
        self._queue: deque[str] = deque()
        self._feed(list(self.tokens))

    def _feed(self, tokens: list[str]) -> None:
        for tok in tokens:
            if all(c in DTMF_DIGITS for c in tok):
                self._queue.extend(tok)  # "123" is three key presses
            else:
                self._queue.append(tok.lower() if _spoken(tok) is None else tok)

    def _say(self, line: str) -> None:
        self.transcript.append(line)
        self.emit(line)

    def _next(self) -> str:
        self._alive()
        if not self._queue and self.ask is not None:
            more = self.ask()
            if more is not None:
                self._feed(parse_tokens(more))
        if not self._queue:
            self.hung_up = True
            self._say("caller hangs up")
            raise CallHangup("the caller script ended")
        return self._queue[0]

    def _alive(self) -> None:
        if self.hung_up:
            raise CallHangup("channel is gone")

    def _advance(self, seconds: float) -> None:
        if self.clock is not None:
            self.clock.now += seconds

    # --- Channel -----------------------------------------------------------------------

    async def answer(self) -> None:
        self._alive()
        if not self.answered:
            self.answered = True
            self._say("answer")

    async def play(self, prompts: list[Prompt], escape_digits: str = "") -> str:
        self._alive()
        for p in prompts:
            self._say(f"play: {p.text}")
        return ""

    async def wait_for_digit(self, timeout_s: float) -> str:
        tok = self._next()
        if tok == "hangup":
            self._queue.popleft()
            self.hung_up = True
            self._say("caller hangs up")
            raise CallHangup("the caller hung up")
        if tok == "wait":
            self._queue.popleft()
            self._advance(timeout_s)
            self._say(f"caller: (silence {timeout_s:g} s)")
            return ""
        if _spoken(tok) is not None:
            raise SimulationInputError(
                f"'{tok}': this prompt takes keys only (speech input is not available yet)"
            )
        if tok in DIAL_RESULTS or _hold_key(tok) or _talk_seconds(tok) is not None:
            raise SimulationInputError(f"'{tok}' given while the flow waits for a key")
        self._queue.popleft()
        self._advance(0.5)
        self._say(f"caller: {tok}")
        return tok

    async def say_digits(self, digits: str, escape_digits: str = "") -> str:
        self._alive()
        self._say(f"say digits: {digits}")
        return ""

    async def say_number(self, number: int, escape_digits: str = "") -> str:
        self._alive()
        self._say(f"say number: {number}")
        return ""

    async def say_date(self, epoch_s: int, escape_digits: str = "") -> str:
        self._alive()
        self._say(f"say date: {epoch_s}")
        return ""

    async def get_variable(self, name: str) -> str | None:
        self._alive()
        return self.variables.get(name)

    async def set_variable(self, name: str, value: str) -> None:
        self._alive()
        self.variables[name] = value

    async def exec(self, application: str, args: str = "") -> int:
        self._alive()
        if application.lower() == "dial":
            status = "ANSWER"
            if self._queue and self._queue[0] in DIAL_RESULTS:
                status = DIAL_RESULTS[self._queue.popleft()]
            self.variables["DIALSTATUS"] = status
            self._say(f"dial {args} -> {status}")
            return 0
        if application.lower() == "queue":
            return self._queue_app(args)
        self._say(f"exec {application}({args})")
        return 0

    def _queue_app(self, args: str) -> int:
        """``Queue()``: the next dial-result token says how waiting ended (default answer);
        ``hangup`` is the caller leaving while in the queue (or talking to the agent)."""
        tok = self._queue[0] if self._queue else ""
        if tok == "hangup":
            self._queue.popleft()
            self.hung_up = True
            self._say(f"queue {args}: caller hangs up")
            raise CallHangup("the caller hung up in the queue")
        if key := _hold_key(tok):  # Queue() returns at once, the channel moved to the key
            self._queue.popleft()
            self.variables.pop("QUEUESTATUS", None)
            self.variables.update(CONTEXT=EXIT_CONTEXT, EXTEN=key)
            self._advance(10.0)
            self._say(f"queue {args}: caller presses {key} while waiting")
            return 0
        self.variables.pop("CONTEXT", None)
        status = QUEUE_RESULTS.get(tok, "CONTINUE")
        if tok in QUEUE_RESULTS:
            self._queue.popleft()
        self.variables["QUEUESTATUS"] = status
        self._advance(30.0)
        self._say(f"queue {args} -> {'agent answered' if status == 'CONTINUE' else status}")
        return 0

    async def listen(self, request: ListenRequest) -> Heard:
        """Speech menus: ``say:<words>`` tokens are matched against the menu's phrases; with
        ``unsure:<words>`` the recogniser is taken to be unsure (confidence 0.5: confirm)."""
        await self.play(request.prompts)
        tok = self._next()
        spoken = _spoken(tok)
        if spoken is not None:
            self._queue.popleft()
            words, unsure = spoken
            self._advance(1.0)
            self._say(f"caller says: {words}" + (" (unsure)" if unsure else ""))
            choice = match_phrase(words, request.choices)
            if choice is None:
                return Heard("no_match", words)
            confirm = request.confirm == "always" or (unsure and request.confirm != "never")
            return Heard("speech", words, choice, 0.5 if unsure else 1.0, confirm=confirm)
        if tok in DTMF_DIGITS and not request.dtmf:
            raise SimulationInputError(f"'{tok}': this menu takes speech only (say:<words>)")
        digit = await self.wait_for_digit(request.no_input_timeout_s)
        return Heard("dtmf", digit, digit) if digit else Heard("no_input")

    async def record(self, request: RecordRequest) -> Recorded:
        """``talk:<s>`` then the end key, or silence; ``wait``: silence; ``hangup``; a key
        at once: an empty message."""
        self._say(f"record {request.file}" + (" (beep)" if request.beep else ""))
        tok = self._next()
        talk = _talk_seconds(tok)
        if talk is None and tok not in ("wait", "hangup") and tok not in request.escape_digits:
            raise SimulationInputError(f"'{tok}' given while the flow records a message")
        if tok == "hangup":
            await self.wait_for_digit(0)  # raises CallHangup
        self._queue.popleft()
        seconds = min(talk or 0.0, request.max_s)
        self._advance(seconds)
        if talk is not None:
            self._say(f"caller: (a message of {seconds:g} s)")
        if seconds >= request.max_s:
            return Recorded(request.max_s, "max")
        key = self._queue[0] if self._queue else ""
        if talk is None and tok != "wait":
            key = tok
        elif key == "hangup":
            await self.wait_for_digit(0)
        elif key and key in request.escape_digits:
            self._queue.popleft()
        else:
            key = ""
        if key:
            self._say(f"caller: {key}")
            return Recorded(seconds, "key", key)
        if request.silence_s:
            self._advance(request.silence_s)
            return Recorded(seconds + 1.0, "silence")
        self._advance(request.max_s - seconds)
        return Recorded(request.max_s, "max")

    async def hangup(self) -> None:
        if not self.hung_up:
            self.hung_up = True
            self._say("hangup")


class StubHttp:
    """``http`` nodes answered from a mapping ``{"GET /path": reply}`` (``--http-stub``)."""

    def __init__(self, replies: Mapping[str, object], emit: Callable[[str], None] = print) -> None:
        self.replies = dict(replies)
        self.emit = emit

    async def request(
        self,
        method: Literal["GET", "POST"],
        path: str,
        *,
        json_body: Mapping[str, object] | None = None,
        timeout_s: float | None = None,
        call_id: str = "",
    ) -> object:
        key = f"{method} {path}"
        if key not in self.replies:
            self.emit(f"http: {key} -> no stub")
            raise HttpLookupError(f"no stub for {key}")
        self.emit(f"http: {key} -> ok")
        return self.replies[key]


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()


def match_phrase(said: str, choices: tuple[tuple[str, tuple[str, ...]], ...]) -> str | None:
    """The option whose phrase occurs in what was said (the longest phrase wins)."""
    words = _words(said)
    best: tuple[int, str] | None = None
    for key, phrases in choices:
        for phrase in phrases:
            p = _words(phrase)
            hit = any(words[i : i + len(p)] == p for i in range(len(words) - len(p) + 1))
            if p and hit and (best is None or len(p) > best[0]):
                best = (len(p), key)
    return best[1] if best else None
