"""The ``agi_*`` environment Asterisk sends first on a FastAGI connection, as a value.

What the block looks like (``res_agi.c``)::

    agi_network: yes
    agi_network_script: bank?lang=zh
    agi_request: agi://127.0.0.1:4573/bank?lang=zh
    agi_channel: PJSIP/sipp-00000001
    ...
    agi_arg_1: retail
    <blank line>

:class:`ivr.asterisk.agi.protocol.AgiConnection` reads the lines; :class:`AgiEnvironment`
gives them meaning: the known keys, the script and its query parameters, the script's
arguments, and the :class:`CallInfo` the flow interpreter starts from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from ivr.call.channel import CallInfo, readable

__all__ = ["AgiEnvironment"]

_UNKNOWN: Final = "unknown"  # what Asterisk prints for an absent caller id / dnid / rdnis

_ENV_FIELDS: Final = (
    "network", "network_script", "request", "channel", "language", "type", "uniqueid",
    "version", "callerid", "calleridname", "callingpres", "callingani2", "callington",
    "callingtns", "dnid", "rdnis", "context", "extension", "priority", "enhanced",
    "accountcode", "threadid",
)  # fmt: skip
_ARG_KEY = re.compile(r"agi_arg_([1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class AgiEnvironment:
    """The ``agi_*`` block Asterisk sends first, as raw strings (``agi_`` prefix dropped).

    Bytes that are not UTF-8 (a Latin-1 caller name) are kept as ``surrogateescape``
    characters; :func:`ivr.call.channel.readable` shows them as ``\\xe9`` in logs and records.

    ``callerid``, ``calleridname``, ``dnid`` and ``rdnis`` are ``""`` where Asterisk wrote
    ``unknown``. ``args`` holds ``agi_arg_1..N`` in order; unknown ``agi_*`` keys land in
    ``extra`` (newer Asterisk versions add keys).

    >>> env = AgiEnvironment.from_headers(
    ...     {"agi_network_script": "bank?lang=zh", "agi_callerid": "unknown", "agi_arg_1": "a"}
    ... )
    >>> env.script, env.params, env.callerid, env.args
    ('bank', {'lang': 'zh'}, '', ('a',))
    """

    network: str = ""
    network_script: str = ""
    request: str = ""
    channel: str = ""
    language: str = ""
    type: str = ""
    uniqueid: str = ""
    version: str = ""
    callerid: str = ""
    calleridname: str = ""
    callingpres: str = ""
    callingani2: str = ""
    callington: str = ""
    callingtns: str = ""
    dnid: str = ""
    rdnis: str = ""
    context: str = ""
    extension: str = ""
    priority: str = ""
    enhanced: str = ""
    accountcode: str = ""
    threadid: str = ""
    args: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> AgiEnvironment:
        """Build from ``{"agi_channel": "PJSIP/x", ...}`` (values without the ``": "``)."""
        known: dict[str, str] = {}
        args: dict[int, str] = {}
        extra: dict[str, str] = {}
        for key, value in headers.items():
            name = key.removeprefix("agi_")
            if key.startswith("agi_arg_") and (m := _ARG_KEY.fullmatch(key)) is not None:
                args[int(m.group(1))] = value
            elif name in _ENV_FIELDS:
                known[name] = value
            else:
                extra[key] = value
        for name in ("callerid", "calleridname", "dnid", "rdnis"):
            if known.get(name, "").lower() == _UNKNOWN:
                known[name] = ""
        # agi_arg_N are numbered from 1 without gaps; keep their order even if a gap appears.
        ordered = tuple(args[n] for n in sorted(args))
        return cls(**known, args=ordered, extra=extra)

    def _script_url(self) -> str:
        # agi_network_script is everything after the host's first "/" (query included);
        # fall back to agi_request's path for clients that omit it.
        if self.network_script:
            return "/" + self.network_script.lstrip("/")
        parts = urlsplit(self.request)
        return parts.path + ("?" + parts.query if parts.query else "")

    @property
    def script(self) -> str:
        """The requested script: ``"bank"`` for ``agi://127.0.0.1:4573/bank?lang=zh``."""
        path = self._script_url().partition("?")[0]
        return path.strip("/")

    @property
    def params(self) -> dict[str, str]:
        """Query parameters of the request: ``{"lang": "zh"}`` (last value wins)."""
        query = self._script_url().partition("?")[2]
        return dict(parse_qsl(query, keep_blank_values=True))

    def to_call_info(self) -> CallInfo:
        """What the flow interpreter needs to know about the call."""
        return CallInfo(
            uniqueid=readable(self.uniqueid),  # a key in logs and the store: plain text
            caller_id=self.callerid,
            caller_name=self.calleridname,
            dnis=self.dnid or self.extension,
            channel=self.channel,
            language=self.language or "en",
            args=self.args,
            params=self.params,
        )
