"""A scripted fake Asterisk that plays the client side of a FastAGI call.

It connects to a FastAGI server, sends an ``agi_*`` block for ``script``, then answers each
command line the way ``res_agi.c`` does (arguments parsed with Asterisk's quoting rules, wrong
argument counts answered with a multi-line ``520``), until the server closes the connection —
like the real Asterisk, it never closes first, even after ``HANGUP``.

    result = await run_fake_call("127.0.0.1", port, script="bank", digits=["1", "2"])
    assert result.commands[0] == "ANSWER" and result.closed_by_server

Default answers: ANSWER ``200 result=0``; STREAM FILE ``200 result=0 endpos=1234`` (or the
next scripted digit when ``barge_in`` and it is an escape digit); WAIT FOR DIGIT the next
scripted digit's ASCII code (``""`` in ``digits`` or none left: ``200 result=0``, a timeout);
SAY * ``200 result=0``; EXEC ``200 result=0``; GET VARIABLE ``200 result=1 (value)`` or
``200 result=0``; SET VARIABLE ``200 result=1``; HANGUP ``200 result=1`` then a ``HANGUP``
line; unknown commands ``510``. ``hangup_at=N`` makes the caller hang up during command ``N``
(0-based): a media command answers ``result=-1`` then ``HANGUP``; any other command gets
``HANGUP`` first and then the dead-channel answer (``511`` unless allowed on dead channels).
``rule(command, state)`` may return the reply lines itself (``[]``: never answer; a number
in the list: pause that many seconds first, e.g. ``[0.5, "200 result=0 endpos=4000"]`` for a
prompt that plays 0.5 s) or ``None`` for the default.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

_uniqueids = itertools.count(1)

# (name, min argc, max argc) in Asterisk's argv terms (argv[0] is the first command word).
_COMMANDS: dict[str, tuple[int, int]] = {
    "ANSWER": (1, 1),
    "STREAM FILE": (4, 5),
    "WAIT FOR DIGIT": (4, 4),
    "SAY DIGITS": (4, 4),
    "SAY NUMBER": (4, 5),
    "SAY DATE": (4, 4),
    "GET VARIABLE": (3, 3),
    "GET FULL VARIABLE": (4, 5),
    "SET VARIABLE": (4, 4),
    "EXEC": (2, 128),
    "HANGUP": (1, 2),
    "VERBOSE": (2, 3),
    "NOOP": (1, 128),
}
_DEAD_OK = {"GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "EXEC", "VERBOSE", "NOOP"}
_MEDIA = {"STREAM FILE", "WAIT FOR DIGIT", "SAY DIGITS", "SAY NUMBER", "SAY DATE", "EXEC"}
DEAD_511 = "511 Command Not Permitted on a dead channel or intercept routine"


def parse_args(line: str) -> list[str]:
    """Split a command line exactly like ``parse_args()`` in Asterisk's ``res_agi.c``."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:
                cur = []
                argv.append("")
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                argv[-1] = "".join(cur)
            cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        escaped = False
        if cur is None:
            cur = []
            argv.append("")
        cur.append(ch)
    if cur is not None:
        argv[-1] = "".join(cur)
    return argv


@dataclass(frozen=True)
class FakeCommand:
    """One command line as the fake Asterisk received it."""

    raw: str
    argv: tuple[str, ...]
    name: str  # "STREAM FILE"; the upper-cased first word when unknown

    @property
    def args(self) -> tuple[str, ...]:
        """Arguments after the command name."""
        return self.argv[len(self.name.split(" ")) :]

    @classmethod
    def parse(cls, raw: str) -> FakeCommand:
        argv = tuple(parse_args(raw))
        upper = [a.upper() for a in argv]
        for size in (3, 2, 1):
            if " ".join(upper[:size]) in _COMMANDS:
                return cls(raw, argv, " ".join(upper[:size]))
        return cls(raw, argv, upper[0] if upper else "")


@dataclass
class FakeCallState:
    """What the fake channel knows; rules may read and change it."""

    digits: list[str]
    variables: dict[str, str]
    barge_in: bool = False
    dead: bool = False  # caller gone: HANGUP line sent
    answered: bool = False
    index: int = 0  # index of the command being answered


Rule = Callable[[FakeCommand, FakeCallState], Sequence[str | float] | None]


@dataclass
class FakeCallResult:
    """What happened on one fake call."""

    commands: list[str]
    env: dict[str, str]
    variables: dict[str, str]
    digits_left: list[str]
    hung_up: bool  # the fake channel ended up hung up (caller or HANGUP command)
    closed_by_server: bool  # the server closed the connection (EOF), as it must
    timed_out: bool = False
    replies: list[str] = field(default_factory=list)

    @property
    def parsed(self) -> list[FakeCommand]:
        return [FakeCommand.parse(c) for c in self.commands]

    @property
    def names(self) -> list[str]:
        """Command names in order, e.g. ``["ANSWER", "STREAM FILE", "HANGUP"]``."""
        return [c.name for c in self.parsed]


def build_env(
    script: str = "bank",
    *,
    host: str = "127.0.0.1",
    port: int = 4573,
    caller: str = "5551234",
    caller_name: str = "",
    uniqueid: str | None = None,
    args: Sequence[str] = (),
    query: str = "",
    extension: str = "100",
    language: str = "en",
) -> dict[str, str]:
    """An ``agi_*`` block as Asterisk 22 sends it for ``AGI(agi://host:port/script?query)``."""
    path = script + ("?" + query if query else "")
    env = {
        "agi_network": "yes",
        "agi_network_script": path,
        "agi_request": f"agi://{host}:{port}/{path}",
        "agi_channel": "PJSIP/sipp-00000001",
        "agi_language": language,
        "agi_type": "PJSIP",
        "agi_uniqueid": uniqueid or f"{int(time.time())}.{next(_uniqueids)}",
        "agi_version": "22.10.1",
        "agi_callerid": caller or "unknown",
        "agi_calleridname": caller_name or "unknown",
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": extension,
        "agi_rdnis": "unknown",
        "agi_context": "ivr",
        "agi_extension": extension,
        "agi_priority": "1",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140234567890123",
    }
    for n, arg in enumerate(args, start=1):
        env[f"agi_arg_{n}"] = arg
    return env


def env_block(env: dict[str, str]) -> bytes:
    """Serialise an env dict as Asterisk writes it (``key: value`` lines, blank line).

    Values may hold ``surrogateescape`` characters: they go out as the raw bytes (a Latin-1
    caller name from an old PBX)."""
    text = "".join(f"{k}: {v}\n" for k, v in env.items())
    return text.encode("utf-8", "surrogateescape") + b"\n"


def _usage(name: str) -> list[str]:
    return [
        "520-Invalid command syntax.  Proper usage follows:",
        f" Usage: {name} ... (fake Asterisk)",
        "520 End of proper usage.",
    ]


def _next_digit(state: FakeCallState, escape: str | None) -> str:
    """Pop the next scripted digit; with ``escape`` only if it is an escape digit."""
    if not state.digits:
        return ""
    if escape is not None and (not state.digits[0] or state.digits[0] not in escape):
        return ""
    return state.digits.pop(0)


def default_reply(cmd: FakeCommand, state: FakeCallState) -> list[str]:
    """The reply lines a live Asterisk channel would give (see the module docstring)."""
    if cmd.name not in _COMMANDS:
        return ["510 Invalid or unknown command"]
    low, high = _COMMANDS[cmd.name]
    if not low <= len(cmd.argv) <= high:
        return _usage(cmd.name)
    if state.dead and cmd.name not in _DEAD_OK:
        return [DEAD_511]
    a = cmd.args
    if cmd.name == "ANSWER":
        state.answered = True
        return ["200 result=0"]
    if cmd.name in ("STREAM FILE", "SAY DIGITS", "SAY NUMBER", "SAY DATE"):
        digit = _next_digit(state, a[1]) if state.barge_in else ""
        code = ord(digit) if digit else 0
        tail = " endpos=1234" if cmd.name == "STREAM FILE" else ""
        return [f"200 result={code}{tail}"]
    if cmd.name == "WAIT FOR DIGIT":
        if not a[0].lstrip("-").isdigit():
            return _usage(cmd.name)
        digit = _next_digit(state, None)
        return [f"200 result={ord(digit) if digit else 0}"]
    if cmd.name == "GET VARIABLE":
        value = state.variables.get(a[0])
        return ["200 result=0"] if value is None else [f"200 result=1 ({value})"]
    if cmd.name == "GET FULL VARIABLE":
        name = a[0].removeprefix("${").removesuffix("}")
        value = state.variables.get(name, "")
        return [f"200 result=1 ({value})"] if value else ["200 result=0"]
    if cmd.name == "SET VARIABLE":
        state.variables[a[0]] = a[1]
        return ["200 result=1"]
    if cmd.name == "HANGUP":
        state.dead = True
        return ["200 result=1", "HANGUP"]
    if cmd.name == "VERBOSE":
        return ["200 result=1"]
    return ["200 result=0"]  # EXEC, NOOP


def _hangup_now(cmd: FakeCommand, state: FakeCallState) -> list[str]:
    """The caller hangs up while this command is in progress."""
    if cmd.name in _MEDIA and not state.dead:
        state.dead = True
        tail = " endpos=480" if cmd.name == "STREAM FILE" else ""
        return [f"200 result=-1{tail}", "HANGUP"]
    state.dead = True
    return ["HANGUP", *default_reply(cmd, state)]


async def run_fake_call(
    host: str,
    port: int,
    *,
    script: str = "bank",
    digits: Sequence[str] = (),
    caller: str = "5551234",
    caller_name: str = "",
    uniqueid: str | None = None,
    args: Sequence[str] = (),
    query: str = "",
    variables: dict[str, str] | None = None,
    hangup_at: int | None = None,
    barge_in: bool = False,
    rule: Rule | None = None,
    timeout_s: float = 10.0,
) -> FakeCallResult:
    """Run one call against a FastAGI server; return once the server closes the socket
    (or after ``timeout_s``, with ``timed_out=True``)."""
    env = build_env(
        script, host=host, port=port, caller=caller, caller_name=caller_name,
        uniqueid=uniqueid, args=args, query=query,
    )  # fmt: skip
    state = FakeCallState(list(digits), dict(variables or {}), barge_in=barge_in)
    result = FakeCallResult([], env, state.variables, state.digits, False, False)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        async with asyncio.timeout(timeout_s):
            writer.write(env_block(env))
            await writer.drain()
            while line := await reader.readline():
                raw = line.decode("utf-8", "surrogateescape").removesuffix("\n")
                result.commands.append(raw)
                cmd = FakeCommand.parse(raw)
                state.index = len(result.commands) - 1
                reply = rule(cmd, state) if rule is not None else None
                if reply is None:
                    at_hangup = hangup_at == state.index
                    reply = _hangup_now(cmd, state) if at_hangup else default_reply(cmd, state)
                for item in reply:
                    if isinstance(item, str):
                        result.replies.append(item)
                        writer.write(item.encode("utf-8", "surrogateescape") + b"\n")
                    else:
                        await writer.drain()
                        await asyncio.sleep(item)
                await writer.drain()
            result.closed_by_server = True
    except TimeoutError:
        result.timed_out = True
    except (ConnectionError, OSError):
        result.closed_by_server = True  # reset by the server: closed all the same
    finally:
        result.hung_up = state.dead
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return result
