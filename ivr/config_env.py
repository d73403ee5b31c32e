"""Which ``IVR_*`` environment variables mean something, and a warning for the others.

A misspelt variable (``IVR_LOG_LEVL``) would otherwise be ignored without a word. The
settings' variables come from the settings themselves (``IVR_<KEY>``, ``IVR_<SECTION>_<KEY>``,
``..._FILE`` for secrets); :data:`OTHER_VARIABLES` lists, in this one place, the ``IVR_*``
names the project sets for something else, which ``ivr serve`` may well find in its
environment (a shared compose ``.env``, a test session) and must not warn about.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ivr.config_values import close_names, did_you_mean

PREFIX = "IVR_"

OTHER_VARIABLES = frozenset(
    {
        # the dialplan (asterisk-conf/extensions.conf): read with ENV() or set as globals and
        # channel variables; compose sets some in the Asterisk containers
        "IVR_AGI_SERVICE", "IVR_AGI_DEFAULT_HOST", "IVR_AGI_DEFAULT_SERVICE", "IVR_AGI_AT",
        "IVR_RESUME_TRIES", "IVR_RESUME", "IVR_TRY", "IVR_FLOW", "IVR_PROMPTS", "IVR_SORRY",
        # channel variables the server sets for the dialplan, the agent and outbound calls
        "IVR_RESULT", "IVR_CALL_ID", "IVR_REASON", "IVR_LANGUAGE", "IVR_PATH", "IVR_JOB",
        # docker-compose.yml and the images' entrypoints (docker/)
        "IVR_CONFIG", "IVR_SIP_PUBLISH_IP", "IVR_SECRETS_DIR", "IVR_PG_LISTEN",
        "IVR_PG_SOCKET_DIR", "IVR_UID", "IVR_GID",
        # scripts/container_images.sh and tests/compose (podman's work directory)
        "IVR_CONTAINERS_DIR",
        # the developer's Asterisk lab (ivr.lab.paths, ivr.lab.chroot)
        "IVR_LAB_ROOT", "IVR_LAB_CACHE", "IVR_LAB_STATE", "IVR_LAB_MIRROR",
        # the test suite (tests/support/timeshift.py, tests/unit/test_validate_messages.py)
        "IVR_TEST_CLOCK_SHIFT_DAYS", "IVR_TEST_CLOCK_SHIFT_S", "IVR_UPDATE_GOLDEN",
    }
)  # fmt: skip
# the lab's and compose's SIP passwords: IVR_SIP_<user>_PASSWORD (ivr.lab.credentials)
OTHER_PATTERNS = (re.compile(r"IVR_SIP_\w+_PASSWORD"),)


def setting_variables(settings_cls: type, secrets: Collection[tuple[str, str]]) -> list[str]:
    """The variables that set a field of ``settings_cls`` (a dataclass of settings and
    sections), in field order; a secret ``(section, key)`` also has its ``..._FILE``."""
    names: list[str] = []
    for f in dataclasses.fields(settings_cls):
        section: Any = f.default_factory
        if section is not dataclasses.MISSING and dataclasses.is_dataclass(section):
            for sub in dataclasses.fields(section):
                name = f"{PREFIX}{f.name}_{sub.name}".upper()
                names += [name, f"{name}_FILE"] if (f.name, sub.name) in secrets else [name]
        else:
            names.append(f"{PREFIX}{f.name}".upper())
    return names


def unknown_variables(env: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """A warning for each ``IVR_*`` variable of ``env`` that is neither a setting in
    ``known`` nor one of the project's other variables, with the settings it may be."""
    known = list(known)
    allowed = {*known, *OTHER_VARIABLES}
    warnings = []
    for name in sorted(env):
        if not name.startswith(PREFIX) or name in allowed:
            continue
        if any(p.fullmatch(name) for p in OTHER_PATTERNS):
            continue
        hint = did_you_mean(close_names(name, known)) or "it is ignored"
        warnings.append(f"{name} is not a setting; {hint}")
    return warnings
