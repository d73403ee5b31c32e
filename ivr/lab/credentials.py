"""The lab's secrets and the Asterisk configuration that holds them.

asterisk-conf/ ``#include``s one ``secrets/<name>.conf`` per password; the lab generates a random
value for each once (``secrets.env`` in the state directory, mode 0600; the environment wins)
and writes them next to the configuration it copies into the chroot's ``/etc/asterisk``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import LabError
from ivr.lab.paths import LabPaths

SECRETS_FILE = "secrets.env"  # in LabPaths.state, mode 0600
LEGACY_AMI_SECRET = "ami-secret"  # the lab's AMI secret before secrets.env held it
_INCLUDE = re.compile(r'^#include\s+"secrets/([^"]+)\.conf"', re.M)


@dataclass(frozen=True)
class SecretSpec:
    """One ``#include "secrets/<name>.conf"`` of asterisk-conf/: the file Asterisk reads,
    the option it holds and the variable that holds its value."""

    name: str  # e.g. sip-1001 (file secrets/sip-1001.conf)
    option: str  # "password" (pjsip auth) or "secret" (manager user)
    env_var: str  # IVR_SIP_1001_PASSWORD, IVR_AMI_SECRET


def secret_specs(conf_dir: Path) -> list[SecretSpec]:
    """Every secret the configuration #includes: ``ami-<user>`` (manager.conf) and
    ``sip-<user>`` (pjsip.conf auth sections)."""
    specs: dict[str, SecretSpec] = {}
    for conf in sorted(conf_dir.glob("*.conf")):
        for name in _INCLUDE.findall(conf.read_text()):
            if name.startswith("ami-"):
                spec = SecretSpec(name, "secret", "IVR_AMI_SECRET")
            elif name.startswith("sip-"):
                user = re.sub(r"\W", "_", name.removeprefix("sip-")).upper()
                spec = SecretSpec(name, "password", f"IVR_SIP_{user}_PASSWORD")
            else:
                raise LabError(f"{conf.name}: no rule for secrets/{name}.conf (ami-*, sip-*)")
            specs[name] = spec
    return list(specs.values())


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


def ensure_secrets(paths: LabPaths) -> tuple[Path, list[str]]:
    """The lab's generated secrets file (state/secrets.env, mode 0600), with a random value
    for every variable the configuration needs; returns it and the variables added now.

    Generated once: later starts reuse the values (a phone keeps its password, a running
    ``ivr serve`` its AMI login). An AMI secret from before this file is carried over."""
    path = paths.state / SECRETS_FILE
    values = _read_env_file(path) if path.exists() else {}
    legacy = paths.state / LEGACY_AMI_SECRET
    if "IVR_AMI_SECRET" not in values and legacy.exists():
        values["IVR_AMI_SECRET"] = legacy.read_text().strip()
    added = [spec.env_var for spec in secret_specs(paths.conf) if spec.env_var not in values]
    for var in added:
        values[var] = secrets.token_hex(16)  # 128 bits; hex: safe in any config or shell
    if added or not path.exists() or path.stat().st_mode & 0o077:
        paths.state.mkdir(parents=True, exist_ok=True)
        text = (
            "# ivr lab: random secrets, generated at the first `ivr lab up` and kept for\n"
            "# the next ones (delete this file to get new ones; a variable of the same\n"
            "# name in the environment wins). A softphone registers as <user> with the\n"
            "# password IVR_SIP_<user>_PASSWORD, server <this host>:5060, UDP.\n"
            + "".join(f"{key}={value}\n" for key, value in values.items())
        )
        partial = path.with_name(path.name + ".partial")
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        partial.rename(path)
    legacy.unlink(missing_ok=True)
    return path, added


def secret(paths: LabPaths, env_var: str) -> str:
    """A secret of the lab: the environment's value, else the generated one."""
    if value := os.environ.get(env_var):
        return value
    path, _ = ensure_secrets(paths)
    values = _read_env_file(path)
    if env_var not in values:
        raise LabError(f"{env_var} is not a secret of asterisk-conf/ (see {path})")
    return values[env_var]


def install_config(paths: LabPaths) -> None:
    """Replace the stock /etc/asterisk with asterisk-conf/*.conf plus the secrets files."""
    etc = paths.root / "etc/asterisk"
    shutil.rmtree(etc, ignore_errors=True)
    (etc / "secrets").mkdir(parents=True, mode=0o700)
    for conf in sorted(paths.conf.glob("*.conf")):
        shutil.copy2(conf, etc / conf.name)
    ensure_secrets(paths)
    for spec in secret_specs(paths.conf):
        target = etc / "secrets" / f"{spec.name}.conf"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"{spec.option} = {secret(paths, spec.env_var)}\n")
