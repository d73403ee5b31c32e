"""AGI replies: one command's final reply, parsed from Asterisk's status line (``res_agi.c``).

A reply is ``<code> <text>``; for ``200`` the text is ``result=<token>``, optionally data in
parentheses and ``endpos=<n>``. A multi-line ``520-`` usage block is joined by the connection
(:class:`ivr.asterisk.agi.protocol.AgiConnection`), which ends it at :data:`USAGE_END`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ivr.errors import ProtocolError

__all__ = ["STATUS_LINE", "USAGE_END", "Reply", "parse_reply_line"]


class Reply(NamedTuple):
    """The final reply to one command.

    ``result`` is the raw token after ``result=`` (``"-1"``, ``"55"``, ``""`` for
    ``200 result= (timeout)`` or for non-200 codes). ``data`` is the text in parentheses for
    200 replies, the message for ``510``/``511``/single-line ``520``, and the usage text for a
    multi-line ``520``. ``raw`` is the reply as received (lines joined with ``\\n``).
    """

    # A named tuple, not a frozen dataclass: one is built per AGI command, and a frozen
    # dataclass's __init__ costs a setattr call per field.
    code: int
    result: str
    data: str | None
    endpos: int | None
    raw: str

    def result_int(self) -> int:
        """``result`` as an int; :class:`ProtocolError` if it is not one."""
        try:
            return int(self.result)
        except ValueError:
            raise ProtocolError(f"AGI result is not an integer: {self.raw!r}") from None


STATUS_LINE = re.compile(r"(\d{3})([ -])(.*)")
_RESULT = re.compile(r"result=(\S*)(.*)")
# Data may itself contain parentheses: take the last ")" that only key=value pairs follow.
_DATA_STRICT = re.compile(r"\((.*)\)((?:\s+\w+=\S*)*)\s*")
_DATA_LOOSE = re.compile(r"\(([^)]*)\)(.*)")
_ENDPOS = re.compile(r"(?:^|\s)endpos=(-?\d+)")
USAGE_END = "520 End of proper usage."
# Most replies are exactly this ("200 result=0", "200 result=55 endpos=8640"): one match.
_PLAIN_200 = re.compile(r"200 result=(-?\d+)(?: endpos=(-?\d+))?")


def parse_reply_line(line: str) -> Reply:
    """Parse one single-line reply.

    >>> parse_reply_line("200 result=0")
    Reply(code=200, result='0', data=None, endpos=None, raw='200 result=0')
    >>> parse_reply_line("200 result=55 endpos=8640")
    Reply(code=200, result='55', data=None, endpos=8640, raw='200 result=55 endpos=8640')
    >>> parse_reply_line("200 result=1 (a (b) c)").data
    'a (b) c'
    >>> parse_reply_line("200 result= (timeout)")
    Reply(code=200, result='', data='timeout', endpos=None, raw='200 result= (timeout)')
    >>> parse_reply_line("200 result=-1 (hangup) endpos=4000").endpos
    4000
    >>> parse_reply_line("510 Invalid or unknown command").data
    'Invalid or unknown command'
    """
    if line.startswith("200 result="):  # the most common replies, without a regex
        rest = line[11:]
        if rest.isdigit() and rest.isascii():
            return Reply(200, rest, None, None, line)
        result, endpos_key, endpos = rest.partition(" endpos=")
        if endpos_key and _plain_int(result) and _plain_int(endpos):
            return Reply(200, result, None, int(endpos), line)
    if plain := _PLAIN_200.fullmatch(line):
        result, endpos = plain.groups()
        return Reply(200, result, None, None if endpos is None else int(endpos), line)
    m = STATUS_LINE.fullmatch(line)
    if m is None or m.group(2) != " ":
        raise ProtocolError(f"not an AGI reply line: {line!r}")
    code, text = int(m.group(1)), m.group(3)
    rm = _RESULT.match(text)
    if code != 200:
        # 510/511/520 carry a message; 503 carries "result=-2 Memory allocation failure".
        return Reply(code, rm.group(1) if rm else "", text, None, line)
    if rm is None:
        raise ProtocolError(f"200 reply without result=: {line!r}")
    result, rest = rm.group(1), rm.group(2).strip()
    data: str | None = None
    if rest.startswith("("):
        dm = _DATA_STRICT.fullmatch(rest) or _DATA_LOOSE.fullmatch(rest)
        if dm is None:
            raise ProtocolError(f"unbalanced parentheses in AGI reply: {line!r}")
        data, rest = dm.group(1), dm.group(2)
    em = _ENDPOS.search(rest)
    return Reply(code, result, data, int(em.group(1)) if em else None, line)


def _plain_int(text: str) -> bool:
    """``-?[0-9]+`` (ASCII digits)."""
    digits = text[1:] if text.startswith("-") else text
    return digits.isdigit() and digits.isascii()
