"""``AgiChannel``: the interpreter's :class:`ivr.call.channel.Channel` spoken over AGI commands.

The channel never touches a socket: it is given a :class:`CommandSender` (send one command
line, await its :class:`~ivr.asterisk.agi.replies.Reply`). The FastAGI server provides one per
connection; tests provide a scripted one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from ivr.asterisk.agi import commands as c
from ivr.asterisk.agi.replies import Reply
from ivr.asterisk.agi.sounds import SoundLengths
from ivr.call.channel import (
    DTMF_DIGITS,
    CallInfo,
    Heard,
    ListenRequest,
    Prompt,
    Recorded,
    RecordRequest,
    readable,
)
from ivr.errors import (
    AgiCommandInvalid,
    AgiCommandTimeout,
    AgiError,
    AgiUsageError,
    CallHangup,
    IvrError,
)

logger = logging.getLogger("ivr.asterisk.agi")

# Generous guesses for what Asterisk says itself (SAY *): its digit and number files are
# well under a second each; a number is at most about two words per digit.
_SAY_DIGIT_S = 1.0
_SAY_NUMBER_DIGIT_S = 2.0
_SAY_DATE_S = 10.0
# Applications that play files (``Playback(a&b,options)``): bounded by the files' length.
# Every other one (Queue, Dial, AudioSocket) runs as long as it takes: no deadline.
_PLAYBACK_APPS = frozenset({"playback", "background"})
_RECORD_RATE_HZ = 8000  # RECORD FILE's endpos counts samples of the WAV (8 kHz slin)
_REFUSALS = {510: "invalid", 520: "usage"}  # error kinds by reply code (else "reply")


class CommandSender(Protocol):
    """Send one AGI command line and return its final reply.

    Contract: ``timeout_s`` bounds the wait (``None``: no bound) and a timeout raises
    :class:`AgiCommandTimeout`; when Asterisk sends ``HANGUP`` before or instead of the reply
    (or closes the connection) the sender still consumes the reply when one comes, then raises
    :class:`~ivr.errors.CallHangup`, so replies never get out of step with commands.
    """

    async def __call__(self, command: str, timeout_s: float | None) -> Reply: ...


class CallLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds ``uniqueid`` to each record's extras (the log format prints it in brackets)."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


def call_logger(uniqueid: str, base: logging.Logger | None = None) -> CallLogger:
    """A logger for one call (``ivr.asterisk.agi`` unless ``base`` is given)."""
    return CallLogger(base or logger, {"uniqueid": uniqueid})


def _check_escape_digits(escape_digits: str) -> None:
    if escape_digits.strip(DTMF_DIGITS):  # something besides [0-9*#] is left
        raise ValueError(f"escape digits must be in {DTMF_DIGITS!r}: {escape_digits!r}")


def _digit(code: int) -> str:
    """ASCII code from Asterisk -> ``"0".."9"``, ``"*"``, ``"#"``, else ``""`` (A-D, junk)."""
    char = chr(code) if 0 < code < 128 else ""
    return char if char in DTMF_DIGITS else ""


class AgiChannel:
    """One live call driven through AGI commands.

    ``sounds_prefix`` is put in front of ``Prompt.file`` for ``"tts"``/``"file"`` prompts
    (e.g. ``"ivr/"`` when the project's ``prompts/`` is mounted as ``sounds/ivr``); ``"sound"``
    prompts are Asterisk stock sounds and go as they are. ``command_timeout_s`` bounds each
    short command; ``wait_for_digit`` adds its own timeout. A playback (``STREAM FILE``,
    ``SAY *``, ``EXEC Playback``) gets its length plus ``command_timeout_s``: the length is read
    from the file under ``sounds`` (the prompts directory, seen by Asterisk under
    ``sounds_prefix``), estimated for ``SAY``, and ``unknown_prompt_s`` when unknown (a stock
    sound). Other ``exec`` applications are unbounded (``Queue``/``Dial`` run for minutes).

    Once the caller is gone every method raises :class:`~ivr.errors.CallHangup`, except
    :meth:`hangup`, which is then a no-op. ``on_error(verb, kind)`` hears of each command
    that timed out (``timeout``), that Asterisk refused (``invalid``: 510, ``usage``: 520,
    ``reply``: another code) or that failed (``failed``: a missing sound, an unknown
    application, a recording not written): the server's metrics.
    """

    def __init__(
        self,
        info: CallInfo,
        send: CommandSender,
        *,
        sounds_prefix: str = "",
        command_timeout_s: float = 30.0,
        sounds: SoundLengths | None = None,
        unknown_prompt_s: float = 300.0,
        log: logging.LoggerAdapter[logging.Logger] | None = None,
        on_error: Callable[[str, str], None] | None = None,
    ) -> None:
        self.info = info
        self.on_error = on_error
        self.sounds_prefix = sounds_prefix
        self.command_timeout_s = command_timeout_s
        self.sounds = sounds
        self.unknown_prompt_s = unknown_prompt_s
        self._send = send
        self._log = log or call_logger(info.uniqueid)
        # Asked once per call, not twice per command (the level does not change mid-call).
        self._debug = self._log.isEnabledFor(logging.DEBUG)
        self._answered = False
        self._gone = False
        # Speech menus need the AudioSocket side too; the app plugs it in (ivr.speech.service).
        self.listener: Callable[[AgiChannel, ListenRequest], Awaitable[Heard]] | None = None

    @property
    def hung_up(self) -> bool:
        """True once the caller hung up or the channel was hung up by us."""
        return self._gone

    # -- plumbing
    async def run_command(self, command: str, timeout_s: float | None = None) -> Reply:
        """Send a raw command line (see :mod:`ivr.asterisk.agi.protocol` helpers) and map errors.

        Returns the 200 reply; raises ``CallHangup`` (HANGUP line, 511), ``AgiCommandInvalid``
        (510), ``AgiUsageError`` (520) or ``AgiError`` (anything else).
        ``timeout_s=None`` means ``command_timeout_s``.
        """
        return await self._run(command, self.command_timeout_s if timeout_s is None else timeout_s)

    async def _run(self, command: str, timeout_s: float | None) -> Reply:
        if self._gone:
            raise CallHangup(f"the call is over; not sending {command_name(command)}")
        debug = self._debug
        if debug:
            # SAY commands, and the say-as clips under say/ that replace them, may read back
            # what the caller typed (an account number, a word a digit): not logged
            hidden = command.startswith(("SAY ", f"STREAM FILE {self.sounds_prefix}say/"))
            shown = f"{command_name(command)} ..." if hidden else command
            self._log.debug("-> %s", readable(shown))  # caller bytes shown as \xe9
        try:
            reply = await self._send(command, timeout_s)
        except CallHangup:
            self._gone = True
            self._log.info("caller hung up during %s", command_name(command))
            raise
        except AgiCommandTimeout:
            self._failed(command, "timeout")
            raise
        if debug:
            self._log.debug("<- %s", readable(reply.raw))
        if reply.code == 200:
            return reply
        if reply.code == 511:
            self._gone = True
            raise CallHangup(f"{command_name(command)}: channel is dead (511)")
        self._failed(command, _REFUSALS.get(reply.code, "reply"))
        if reply.code == 510:
            raise AgiCommandInvalid(f"Asterisk does not know the command: {readable(command)}")
        if reply.code == 520:
            raise AgiUsageError(
                f"wrong usage of {command_name(command)}: {readable(command)}", reply.data or ""
            )
        raise AgiError(f"unexpected reply to {command_name(command)}: {readable(reply.raw)}")

    def _failed(self, command: str, kind: str) -> None:
        if self.on_error is not None:
            self.on_error(command_name(command), kind)

    def _sound_seconds(self, name: str) -> float | None:
        """Length of the sound Asterisk knows as ``name``; ``None`` if not one of ours."""
        if self.sounds is None or not name.startswith(self.sounds_prefix):
            return None
        return self.sounds.seconds(name[len(self.sounds_prefix) :])

    def _playback_timeout(self, *lengths: float | None) -> float:
        """Deadline of a playback: what it plays, plus the command timeout as a margin."""
        total = self.command_timeout_s
        for length in lengths:
            total += self.unknown_prompt_s if length is None else length
        return total

    async def _playback(self, command: str, what: str, timeout_s: float) -> str:
        """Run a playback command; return the escape digit pressed or ``""``."""
        code = (await self._run(command, timeout_s)).result_int()
        if code < 0:
            # -1 means either "hung up" or "no such sound file" (channel still up). After a
            # hangup Asterisk sends HANGUP before reading the next command, so a NOOP (allowed
            # on dead channels) tells the two apart: it raises CallHangup if the caller left.
            await self._run(c.noop(), self.command_timeout_s)
            self._failed(command, "failed")
            raise AgiError(f"{what} failed (result {code}): sound missing or unplayable")
        return _digit(code)

    # -- Channel protocol
    async def answer(self) -> None:
        """Answer the call; a no-op when this channel already answered it."""
        if self._answered:
            return
        if (await self._run(c.answer(), self.command_timeout_s)).result_int() < 0:
            self._gone = True
            raise CallHangup("ANSWER failed: the channel is gone")
        self._answered = True

    def sound_name(self, prompt: Prompt) -> str:
        """The name ``STREAM FILE`` gets for ``prompt``."""
        if prompt.kind in ("tts", "file"):
            return self.sounds_prefix + prompt.file
        if prompt.kind == "sound":
            return prompt.file
        raise ValueError(f"unknown prompt kind {prompt.kind!r} (tts, file or sound)")

    async def play(self, prompts: list[Prompt], escape_digits: str = "") -> str:
        """``STREAM FILE`` each prompt; stop at the first escape digit and return it."""
        _check_escape_digits(escape_digits)
        for prompt in prompts:
            name = self.sound_name(prompt)
            digit = await self._playback(
                c.stream_file(name, escape_digits),
                f"play {name!r}",
                self._playback_timeout(self._sound_seconds(name)),
            )
            if digit and digit in escape_digits:
                return digit
        return ""

    async def wait_for_digit(self, timeout_s: float) -> str:
        """Wait up to ``timeout_s`` for one digit in ``[0-9*#]``; ``""`` on timeout."""
        if timeout_s < 0:
            raise ValueError("timeout_s must be >= 0")
        deadline = time.monotonic() + timeout_s
        left_ms = round(timeout_s * 1000)  # exact on the first pass (a GIL switch costs ms)
        while True:
            reply = await self._run(c.wait_for_digit(left_ms), timeout_s + self.command_timeout_s)
            code = reply.result_int()
            if code < 0:
                self._gone = True
                raise CallHangup("WAIT FOR DIGIT failed: the caller hung up")
            if code == 0:
                return ""
            if digit := _digit(code):
                return digit
            # A-D or junk: not a digit we accept; keep waiting for what is left.
            left_ms = round((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                return ""

    async def say_digits(self, digits: str, escape_digits: str = "") -> str:
        """``SAY DIGITS``: speak ``digits`` (``[0-9]`` only) one by one."""
        _check_escape_digits(escape_digits)
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"say_digits takes [0-9]+, got {digits!r}")
        digit = await self._playback(
            c.say_digits(digits, escape_digits),
            "SAY DIGITS",
            self._playback_timeout(len(digits) * _SAY_DIGIT_S),
        )
        return digit if digit in escape_digits else ""

    async def say_number(self, number: int, escape_digits: str = "") -> str:
        """``SAY NUMBER``."""
        _check_escape_digits(escape_digits)
        spoken = len(str(abs(number))) * _SAY_NUMBER_DIGIT_S + _SAY_DIGIT_S  # + "minus"
        digit = await self._playback(
            c.say_number(number, escape_digits), "SAY NUMBER", self._playback_timeout(spoken)
        )
        return digit if digit in escape_digits else ""

    async def say_date(self, epoch_s: int, escape_digits: str = "") -> str:
        """``SAY DATE`` for a Unix time."""
        _check_escape_digits(escape_digits)
        digit = await self._playback(
            c.say_date(epoch_s, escape_digits), "SAY DATE", self._playback_timeout(_SAY_DATE_S)
        )
        return digit if digit in escape_digits else ""

    async def get_variable(self, name: str) -> str | None:
        """``GET VARIABLE``: ``None`` when unset (``200 result=0``)."""
        if not name:
            raise ValueError("variable name is empty")
        return _variable(await self._run(c.get_variable(name), self.command_timeout_s))

    async def get_full_variable(self, expression: str) -> str | None:
        """``GET FULL VARIABLE``: evaluate e.g. ``${CALLERID(num)}``; ``None`` when empty."""
        return _variable(await self._run(c.get_full_variable(expression), self.command_timeout_s))

    async def set_variable(self, name: str, value: str) -> None:
        """``SET VARIABLE``."""
        if not name:
            raise ValueError("variable name is empty")
        await self._run(c.set_variable(name, value), self.command_timeout_s)

    async def exec(self, application: str, args: str = "") -> int:
        """``EXEC``: run a dialplan application; returns its result. ``Playback`` is bounded
        by its files' length; any other application by nothing (a queue wait is minutes).

        Raises :class:`~ivr.errors.AgiError` for ``-2`` (Asterisk has no such application),
        because a misspelt application name must not pass for a result.
        """
        timeout_s: float | None = None
        if application.lower() in _PLAYBACK_APPS:
            files = args.split(",", 1)[0].split("&")
            timeout_s = self._playback_timeout(*(self._sound_seconds(f) for f in files if f))
        reply = await self._run(c.exec_application(application, args), timeout_s)
        result = reply.result_int()
        if result == -2:
            self._failed("EXEC", "failed")
            raise AgiError(f"Asterisk has no application {application!r}")
        return result

    async def verbose(self, message: str, level: int = 1) -> None:
        """``VERBOSE``: write to Asterisk's verbose log."""
        await self._run(c.verbose(message, level), self.command_timeout_s)

    async def listen(self, request: ListenRequest) -> Heard:
        """Speech menus: delegated to the listener the app installed (AudioSocket)."""
        if self.listener is None:
            raise IvrError("speech input is not configured on this server")
        return await self.listener(self, request)

    async def record(self, request: RecordRequest) -> Recorded:
        """``RECORD FILE`` as WAV: the end key, ``silence_s`` of silence (Asterisk cuts it
        but its last second) or ``max_s`` ends it. Its length is ``endpos`` (samples, 8 kHz
        for a telephone call's WAV)."""
        command = c.record_file(
            request.file,
            request.escape_digits,
            int(request.max_s * 1000),
            beep=request.beep,
            silence_s=request.silence_s,
        )
        reply = await self._run(command, request.max_s + self.command_timeout_s)
        code = reply.result_int()
        seconds = max(0, reply.endpos or 0) / _RECORD_RATE_HZ
        if code < 0 or reply.data == "hangup":
            await self._run(c.noop(), self.command_timeout_s)  # raises CallHangup if gone
            self._failed(command, "failed")
            raise AgiError(f"RECORD FILE failed: {readable(reply.raw)}")
        if reply.data in ("writefile", "randomerror", "waitfor"):
            self._failed(command, "failed")
            raise AgiError(f"RECORD FILE failed ({reply.data}): can Asterisk write there?")
        if reply.data == "dtmf":  # else result is junk: what ast_waitfor had left, in ms
            return Recorded(seconds, "key", _digit(code))
        ended = "max" if seconds >= request.max_s - 0.5 else "silence"
        return Recorded(seconds, ended if request.silence_s else "max")

    async def hangup(self) -> None:
        """``HANGUP`` the call; a no-op once the call is over."""
        if self._gone:
            return
        with contextlib.suppress(CallHangup):  # already gone: what we wanted
            await self._run(c.hangup(), self.command_timeout_s)
        self._gone = True


def command_name(command: str) -> str:
    """The command's name without its arguments (which may hold caller input), for logs."""
    words = command.split(" ", 3)
    size = 3 if " ".join(words[:2]) in ("WAIT FOR", "GET FULL") else 2
    if words[0] not in ("STREAM", "WAIT", "SAY", "GET", "SET"):
        size = 1
    return " ".join(words[:size])


def _variable(reply: Reply) -> str | None:
    return (reply.data or "") if reply.result_int() == 1 else None
