"""AGI command lines: argument quoting as Asterisk's ``parse_args`` reads it, and one
builder per command the project uses. Pure functions returning ``str`` (no newline); pass
them to :meth:`ivr.asterisk.agi.protocol.AgiConnection.send_command`.

Each builder's docstring shows what Asterisk answers.
"""

from __future__ import annotations

import re
from typing import Final

# Asterisk reads a command into a 2048-byte buffer (AGI_BUF_LEN) with fgets: a longer line
# is split and its tail runs as a second command. Refuse to build one.
MAX_COMMAND_BYTES: Final = 2046

# What quote_arg must look at: quoting (blanks, quotes, backslash), or refusing (NUL; newline
# and CR are blanks). Most arguments hold none of these: one search and they go as they are.
_SPECIAL = re.compile(r'[\s"\\\0]')
_COMMAND_NAME = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_CHECKED_NAMES: set[str] = set()  # names that passed _COMMAND_NAME (one check per name)
# STREAM FILE lines by (file, escape digits): every call plays the prompts the last one
# played, and quoting the arguments again costs more than the look-up. Bounded all the same.
_STREAMS: dict[tuple[str, str], str] = {}
_MAX_STREAMS = 4096


def check_line(text: str) -> None:
    """Raise ``ValueError`` if ``text`` could end the command line early."""
    # A newline would end the command and start another one chosen by whoever wrote `text`.
    if "\n" in text or "\r" in text or "\0" in text:
        raise ValueError(f"newline, CR or NUL in AGI command text: {text!r}")


def quote_arg(arg: str | int) -> str:
    """Quote one argument the way Asterisk's ``parse_args`` reads it back.

    >>> quote_arg("hello-world"), quote_arg(""), quote_arg(12)
    ('hello-world', '""', '12')
    >>> print(quote_arg('say "hi" \\\\ bye'))
    "say \\"hi\\" \\\\ bye"
    """
    text = arg if type(arg) is str else str(arg)
    if text and _SPECIAL.search(text) is None:
        return text
    check_line(text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_command(name: str, *args: str | int) -> str:
    """Build one AGI command line (without the newline).

    >>> format_command("STREAM FILE", "welcome", "")
    'STREAM FILE welcome ""'
    >>> format_command("SET VARIABLE", "GREETING", "good morning")
    'SET VARIABLE GREETING "good morning"'
    """
    if name not in _CHECKED_NAMES:
        if _COMMAND_NAME.fullmatch(name) is None:
            raise ValueError(f"not an AGI command name: {name!r}")
        if len(_CHECKED_NAMES) < 64:  # the project uses about 15; bounded all the same
            _CHECKED_NAMES.add(name)
    if not args:
        return name
    return " ".join([name, *map(quote_arg, args)])


def answer() -> str:
    """``ANSWER`` -> ``200 result=0`` (``-1`` on failure)."""
    return format_command("ANSWER")


def stream_file(file: str, escape_digits: str = "", offset: int | None = None) -> str:
    """``STREAM FILE file digits [offset]`` -> ``200 result=<ascii digit|0|-1> endpos=N``."""
    if offset is not None:
        return format_command("STREAM FILE", file, escape_digits, offset)
    key = (file, escape_digits)
    command = _STREAMS.get(key)
    if command is None:
        command = format_command("STREAM FILE", file, escape_digits)
        if len(_STREAMS) < _MAX_STREAMS:
            _STREAMS[key] = command
    return command


def record_file(
    file: str,
    escape_digits: str,
    timeout_ms: int,
    *,
    beep: bool = False,
    silence_s: int = 0,
    file_format: str = "wav",
) -> str:
    """``RECORD FILE file format digits timeout [offset] [BEEP] [s=silence]`` ->
    ``200 result=<ascii digit|0|-1> (dtmf|timeout|hangup) endpos=<samples>``.

    >>> record_file("/rec/1-n-1", "#", 120000, beep=True, silence_s=3)
    'RECORD FILE /rec/1-n-1 wav # 120000 0 BEEP s=3'
    """
    extra: list[str | int] = ["BEEP"] if beep else []
    if silence_s > 0:
        extra.append(f"s={int(silence_s)}")
    return format_command(
        "RECORD FILE", file, file_format, escape_digits, int(timeout_ms), 0, *extra
    )


def wait_for_digit(timeout_ms: int) -> str:
    """``WAIT FOR DIGIT ms`` -> ``200 result=<ascii digit>``, ``0`` on timeout, ``-1`` error."""
    return format_command("WAIT FOR DIGIT", int(timeout_ms))


def say_digits(digits: str, escape_digits: str = "") -> str:
    """``SAY DIGITS 1234 digits`` -> ``200 result=<ascii digit|0|-1>``."""
    return format_command("SAY DIGITS", digits, escape_digits)


def say_number(number: int, escape_digits: str = "") -> str:
    """``SAY NUMBER n digits`` -> ``200 result=<ascii digit|0|-1>``."""
    return format_command("SAY NUMBER", int(number), escape_digits)


def say_date(epoch_s: int, escape_digits: str = "") -> str:
    """``SAY DATE unixtime digits`` -> ``200 result=<ascii digit|0|-1>``."""
    return format_command("SAY DATE", int(epoch_s), escape_digits)


def get_variable(name: str) -> str:
    """``GET VARIABLE name`` -> ``200 result=1 (value)`` or ``200 result=0`` when unset."""
    return format_command("GET VARIABLE", name)


def get_full_variable(expression: str, channel: str | None = None) -> str:
    """``GET FULL VARIABLE ${expr} [channel]`` -> ``200 result=1 (value)`` or ``result=0``."""
    if channel is None:
        return format_command("GET FULL VARIABLE", expression)
    return format_command("GET FULL VARIABLE", expression, channel)


def set_variable(name: str, value: str) -> str:
    """``SET VARIABLE name value`` -> ``200 result=1``."""
    return format_command("SET VARIABLE", name, value)


def exec_application(application: str, args: str = "") -> str:
    """``EXEC app "args"`` -> ``200 result=<app result>`` (``-2``: no such application)."""
    if not args:
        return format_command("EXEC", application)
    return format_command("EXEC", application, args)


def hangup(channel: str | None = None) -> str:
    """``HANGUP [channel]`` -> ``200 result=1`` (``-1``: no such channel)."""
    return format_command("HANGUP") if channel is None else format_command("HANGUP", channel)


def verbose(message: str, level: int = 1) -> str:
    """``VERBOSE "message" level`` -> ``200 result=1``."""
    return format_command("VERBOSE", message, int(level))


def noop() -> str:
    """``NOOP`` -> ``200 result=0``; allowed on dead channels."""
    return format_command("NOOP")
