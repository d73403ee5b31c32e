"""One setting's value, from YAML or an ``IVR_*`` variable: its type, then what it may be.

:func:`convert` turns the value into the type of the setting's default (a comma-separated
variable into a list, ``yes`` into ``True``) and refuses, with the setting's name, a value the
server would only trip over later: a log level logging does not know, a port out of range, a
host with a port or a scheme in it.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from ivr.errors import ConfigError
from ivr.logs import LOG_FORMATS, LOG_LEVELS

# Ports the server listens on: 0 asks the system for a free one (tests, benchmarks); the
# others (ami.port) are where something already listens, 1-65535.
LISTEN_PORTS = frozenset({"agi.port", "speech.port", "admin.port"})
HOSTS = frozenset({"agi.host", "speech.host", "speech.advertise_host", "ami.host", "admin.host"})
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)", re.IGNORECASE)  # "_": SRV-style names


def convert(value: Any, default: Any, where: str, key: str) -> Any:
    """``value`` as the type of ``default``, checked for the setting ``key`` (``agi.port``);
    ``where`` names it in errors (``IVR_AGI_PORT``, or ``ivr.yaml: agi.port``)."""
    kind = type(default)
    try:
        converted = _typed(value, kind)
    except (TypeError, ValueError):
        what = "list of quoted texts, like ['0900', '+']" if kind is tuple else kind.__name__
        raise ConfigError(f"{where} must be a {what}, not {value!r}") from None
    problem = check(key, converted)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return converted


def check(key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the setting ``key``, or ``None``."""
    if key == "log_level" and str(value).upper() not in LOG_LEVELS:
        return f"{value!r} is not a log level; use one of {', '.join(LOG_LEVELS)}"
    if key == "log_format" and value not in LOG_FORMATS:
        return f"{value!r} is not a log format; use {' or '.join(LOG_FORMATS)}"
    if key == "speech.pocketsphinx_processes" and not 0 <= value <= 64:
        return f"{value} is not a process count; use 0 (decode in threads) to 64"
    if key.endswith(".port"):
        lowest = 0 if key in LISTEN_PORTS else 1
        if not lowest <= value <= 65535:
            free = " (0: any free port)" if lowest == 0 else ""
            return f"{value} is not a port; use 1-65535{free}"
    if key in HOSTS and not is_host(value):
        section = key.partition(".")[0]
        hint = f" (the port goes in {section}.port)" if re.search(r":\d+$", value) else ""
        return f"{value!r} is not a host name or IP address{hint}"
    return None


def is_host(text: str) -> bool:
    """A host name (letters, digits, ``-`` and ``_`` in dot-separated labels) or an IP
    address, unbracketed (``::1``, ``0.0.0.0``)."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    name = text.removesuffix(".")
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(part) for part in name.split("."))


def close_names(word: str, names: Iterable[str]) -> list[str]:
    """The (at most two) names close to a misspelt ``word``, letter case aside. (difflib,
    not :mod:`ivr.flow.suggest`: the transports import the configuration, and the flow
    language is not theirs to import.)"""
    by_lower = {name.lower(): name for name in names}
    return [by_lower[c] for c in difflib.get_close_matches(word.lower(), by_lower, 2, 0.7)]


def did_you_mean(names: list[str]) -> str:
    """``did you mean a?`` (or ``a or b``), "" for no names."""
    return f"did you mean {' or '.join(names)}?" if names else ""


def _typed(value: Any, kind: type) -> Any:
    if kind is tuple:  # a list in YAML, comma-separated in the environment
        items = value.split(",") if isinstance(value, str) else value
        # texts only: YAML reads an unquoted 0900 as the number 900
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise TypeError(value)
        return tuple(str(item).strip() for item in items if str(item).strip())
    if kind is bool:
        if isinstance(value, str):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes")
        return bool(value)
    if kind in (int, float):
        return kind(value)
    return str(value)
