"""Keeping sensitive values (an account number, a PIN) out of log lines and error texts.

Records mask sensitive variables by name. Text is different: an HTTP error quotes the URL
it asked for, an exception may quote a value. :func:`redact` masks every sensitive value
found in a text, as typed and as percent-encoded for a URL; :class:`CallLog` runs every log
line of a call through it, its traceback included.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote

from ivr.call.record import MASK


def redact(text: str, values: Iterable[str]) -> str:
    """``text`` with each of ``values`` (and its URL form) replaced by :data:`MASK`, the
    longest first (so a value containing another is masked whole)."""
    forms = {form for v in values if v for form in (v, quote(v, safe=""))}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


class CallLog(logging.LoggerAdapter[logging.Logger]):
    """The logger of one call: each line carries the call's ``uniqueid`` and goes through
    ``clean`` (the message with its arguments, and the traceback of ``exc_info``)."""

    def __init__(self, logger: logging.Logger, uniqueid: str, clean: Callable[[str], str]) -> None:
        super().__init__(logger, {"uniqueid": uniqueid})
        self.clean = clean

    def log(
        self, level: int, msg: object, *args: object, exc_info: Any = None, **kwargs: Any
    ) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        trace = _traceback(exc_info)
        if trace:
            text = f"{text}\n{trace.rstrip()}"
        kwargs.setdefault("stacklevel", 3)  # the line that logged, past info() and this
        shown, options = self.process(self.clean(text), kwargs)
        self.logger.log(level, "%s", shown, **options)

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def _traceback(exc_info: Any) -> str:
    """``exc_info`` as logging takes it (True, an exception, a sys.exc_info() tuple)."""
    if not exc_info:
        return ""
    if isinstance(exc_info, BaseException):
        return "".join(traceback.format_exception(exc_info))
    info = exc_info if isinstance(exc_info, tuple) else sys.exc_info()
    return "".join(traceback.format_exception(*info)) if info[0] is not None else ""


def sensitive_values(names: Iterable[str], variables: Mapping[str, str]) -> list[str]:
    """The current values of the variables ``names``."""
    return [variables[n] for n in names if variables.get(n)]
