"""One typed configuration: defaults, then a YAML file, then ``IVR_*`` environment variables.

Every setting has a default that works on one machine (loopback, SQLite under ``data/``).
Environment variables override the file: ``IVR_<SECTION>_<KEY>`` (``IVR_AGI_PORT=4600``,
``IVR_STORE_PATH=/var/lib/ivr/calls.sqlite3``) and ``IVR_<KEY>`` for top-level keys
(``IVR_FLOWS_DIR``). Secrets come from the environment or a file, never from the YAML, and never
show in logs or reprs.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ivr.call.events import EVENTS
from ivr.config_boxes import AmiBox, check_boxes
from ivr.config_env import setting_variables, unknown_variables
from ivr.config_values import close_names, convert, did_you_mean
from ivr.errors import ConfigError, YamlRefused
from ivr.flow.numbers import NumberPolicy, check_settings
from ivr.flow.source import safe_load


class Secret:
    """A secret value; its repr and str never show it."""

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class AgiSettings:
    host: str = "127.0.0.1"  # FastAGI is plaintext and unauthenticated: loopback by default
    port: int = 4573
    command_timeout_s: float = 30.0  # a playback gets its prompt's length on top
    unknown_prompt_s: float = 300.0  # the length assumed when a prompt's file is not here
    header_timeout_s: float = 5.0
    max_line_bytes: int = 8192
    sounds_prefix: str = "ivr/"  # where Asterisk sees prompts/ among its sounds
    max_connections: int = 2000  # calls at once; more go back to the dialplan (IVR_RESULT=busy)
    shutdown_grace_s: float = 30.0  # on SIGTERM, calls in progress get this long to finish


@dataclass(frozen=True)
class HttpSettings:
    base_url: str = ""  # empty: http nodes go to their on_error branch
    timeout_s: float = 2.0
    secret: Secret | None = None  # IVR_HTTP_SECRET or IVR_HTTP_SECRET_FILE


@dataclass(frozen=True)
class SpeechSettings:
    """Speech menus: the AudioSocket server Asterisk streams calls to, and the recognisers."""

    host: str = "127.0.0.1"  # AudioSocket listens here; Asterisk connects to advertise_host
    port: int = 4574
    advertise_host: str = "127.0.0.1"  # what the dialplan's AudioSocket() connects to
    english_engine: str = "pocketsphinx"  # embedded; "vosk" uses vosk_model for English too
    vosk_model: str = ""  # a Vosk model directory (e.g. vosk-model-small-en-us-0.15)
    vosk_languages: str = "en"  # comma-separated languages the Vosk model recognises
    workers: int = 2  # decoding threads (one per core)
    # pocketsphinx keeps the GIL while it decodes, which would stop every call's traffic
    # meanwhile: its decodes run in this many worker processes (0: in the decoding threads)
    pocketsphinx_processes: int = 2  # one per core
    # save what each live utterance's recogniser was fed (WAV + JSON) under
    # <recordings_dir>/utterances/ for tuning (ivr.speech.keep): the caller's voice, private,
    # kept as long as call recordings (recordings_retention_days)
    keep_utterances: bool = False


@dataclass(frozen=True)
class AmiSettings:
    """Asterisk Manager Interface: queue state, originate (callbacks, surveys), events.

    AMI is used only when a secret is set (IVR_AMI_SECRET or IVR_AMI_SECRET_FILE); without
    it, queue nodes take their ``when_unavailable`` branch and outbound calls are not placed.
    """

    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "ivr"
    secret: Secret | None = None  # IVR_AMI_SECRET or IVR_AMI_SECRET_FILE
    # Several Asterisk boxes: "name@host[:port]" each, the name being the box's `systemname`
    # (asterisk.conf), which prefixes its uniqueids; empty: the one box at host:port.
    boxes: tuple[str, ...] = ()
    ping_s: float = 10.0  # keepalive; a missed pong reconnects
    reconnect_max_s: float = 30.0  # backoff ceiling between reconnect attempts
    action_timeout_s: float = 5.0

    def box_list(self) -> tuple[AmiBox, ...]:
        """The boxes to connect to (checked by :func:`load_settings`); the one box at
        ``host:port``, named "", when ``boxes`` is empty."""
        if not self.boxes:
            return (AmiBox("", self.host, self.port),)
        return tuple(AmiBox.parse(item, self.port) for item in self.boxes)


@dataclass(frozen=True)
class AdminSettings:
    """The ops console and its HTTP API (``/healthz``, ``/metrics``, ``/api/...``)."""

    enabled: bool = True
    host: str = "127.0.0.1"  # loopback unless configured
    port: int = 8080
    token: Secret | None = None  # IVR_ADMIN_TOKEN or IVR_ADMIN_TOKEN_FILE; needed to change
    open_read: bool = False  # true: read-only endpoints need no token
    max_body_bytes: int = 1_000_000
    # more names a request's Host may carry besides host, localhost, 127.0.0.1 and [::1]
    # (a list; comma-separated in IVR_ADMIN_ALLOWED_HOSTS): any other is refused (421)
    allowed_hosts: tuple[str, ...] = ()

    TOKEN_MIN_LENGTH = 16  # bytes; `openssl rand -hex 16` gives 32

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token.reveal()) < self.TOKEN_MIN_LENGTH:
            raise ConfigError(
                f"the admin token (IVR_ADMIN_TOKEN or IVR_ADMIN_TOKEN_FILE) must "
                f"have at least {self.TOKEN_MIN_LENGTH} characters; make one with "
                "openssl rand -hex 16"
            )


@dataclass(frozen=True)
class StoreSettings:
    path: str = "data/ivr.sqlite3"
    # PostgreSQL instead of the SQLite file (several nodes on one database):
    # postgresql://user@host:port/database, the password apart (IVR_STORE_PASSWORD or
    # IVR_STORE_PASSWORD_FILE), never in the URL
    url: str = ""
    password: Secret | None = None
    # records the database refuses (locked, disk full, read-only) wait here, fsync'd, until
    # it is back; empty: <path>.journal. Another disk survives that disk filling up.
    journal_path: str = ""
    # a record write that finds the writer idle waits this long for others to share its
    # transaction (group commit); no caller ever waits for it
    commit_window_s: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.commit_window_s <= 1:
            raise ConfigError(
                f"store.commit_window_s must be between 0 and 1 (seconds), "
                f"not {self.commit_window_s}"
            )
        if self.url:
            scheme, sep, rest = self.url.partition("://")
            if scheme not in ("postgresql", "postgres") or not sep:
                raise ConfigError(
                    "store.url must be a postgresql://user@host:port/database URL "
                    "(leave it empty for the SQLite file at store.path)"
                )
            if ":" in rest.rpartition("@")[0]:
                raise ConfigError(
                    "store.url holds a password: put it in IVR_STORE_PASSWORD or "
                    "IVR_STORE_PASSWORD_FILE, never in the URL (it is shown in logs)"
                )

    @property
    def target(self) -> str:
        """What the store opens: the PostgreSQL URL, or else the SQLite file."""
        return self.url or self.path

    @property
    def journal(self) -> str | None:
        """Where refused records wait: ``journal_path``, else next to the SQLite file (for
        PostgreSQL too: a local disk, ``<path>.journal``)."""
        return self.journal_path or self.path + ".journal"

    def revealed_password(self) -> str | None:
        """PostgreSQL's password, for the driver only."""
        return None if self.password is None else self.password.reveal().decode()


@dataclass(frozen=True)
class WebhookSettings:
    """Event webhooks, signed (Standard Webhooks) and sent from the store's outbox; off while
    ``url`` is empty. The secret: IVR_WEBHOOKS_SECRET(_FILE), ``whsec_`` + base64."""

    url: str = ""  # https, or http to a loopback address only
    secret: Secret | None = None
    events: tuple[str, ...] = EVENTS  # which to send
    timeout_s: float = 5.0  # one POST
    retry_s: float = 2.0  # the first retry; doubled each time, at most 10 minutes apart
    max_attempts: int = 30
    max_age_s: float = 86400.0  # an event still unsent this long after it happened: failed

    def __post_init__(self) -> None:
        url = urlsplit(self.url)
        host = url.hostname or ""
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        if self.url and url.scheme != "https" and not (url.scheme == "http" and loopback):
            raise ConfigError(
                f"webhooks.url must be https:// (http:// only to a loopback address: "
                f"127.0.0.1, ::1, localhost), not {self.url!r}"
            )
        if set(self.events) - set(EVENTS) or min(self.timeout_s, self.retry_s) <= 0:
            raise ConfigError(
                f"webhooks: events must be among {', '.join(EVENTS)}; timeout_s and retry_s above 0"
            )

    def signing_key(self) -> bytes:
        """The secret's key (:class:`ConfigError` unless the secret is ``whsec_`` and the
        base64 of 24 to 64 bytes, as Standard Webhooks has it)."""
        text = self.secret.reveal() if self.secret is not None else b""
        try:
            key = base64.b64decode(text.removeprefix(b"whsec_"), validate=True)
        except ValueError:
            key = b""
        if not text.startswith(b"whsec_") or not 24 <= len(key) <= 64:
            raise ConfigError(
                "webhooks.url is set: IVR_WEBHOOKS_SECRET (or _FILE) must be whsec_ and "
                'the base64 of 24 to 64 random bytes: echo "whsec_$(openssl rand -base64 32)"'
            )
        return key


@dataclass(frozen=True)
class Settings:
    """The whole configuration of ``ivr serve``."""

    flows_dir: str = "flows"
    flows_poll_s: float = 2.0  # hot reload: how often flows_dir is checked (0: never)
    # reloads refuse a flow whose tests (flows_dir/tests/<flow>.yaml, `ivr test`) fail
    flows_require_tests: bool = False
    prompts_dir: str = "prompts"
    log_level: str = "INFO"  # DEBUG, INFO, WARNING or ERROR
    log_format: str = "text"  # json: one object per line (time, level, logger, message, call_id)
    agi: AgiSettings = field(default_factory=AgiSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    ami: AmiSettings = field(default_factory=AmiSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    # which numbers callbacks and outbound surveys may dial (ivr.flow.numbers)
    numbers: NumberPolicy = field(default_factory=NumberPolicy)
    # this server among several on one database (store.url): written on its calls and
    # outbound attempts; empty: host:agi.port, the same after a restart
    node_id: str = ""
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    # where Asterisk writes callers' messages (record nodes) and the server reads them: one
    # path both see (a shared mount when Asterisk runs elsewhere); empty: next to the store
    recordings_dir: str = ""
    # call recordings (a queue's `record:`, in its calls/) are removed once this many days
    # old, by an hourly task, and their calls' `recording` cleared; 0: kept for ever
    recordings_retention_days: int = 90

    @property
    def recordings(self) -> Path:
        """The recordings directory: ``recordings_dir``, else ``recordings/`` beside the
        SQLite file (``data/recordings``)."""
        return Path(self.recordings_dir or Path(self.store.path).parent / "recordings")


_SECRETS = {("http", "secret"), ("ami", "secret"), ("admin", "token"), ("store", "password")}
_SECRETS.add(("webhooks", "secret"))


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build :class:`Settings` from an optional YAML file and the environment."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = safe_load(Path(path).read_text(encoding="utf-8"), "the configuration") or {}
        except YamlRefused as exc:
            raise ConfigError(exc.at(str(path))) from None
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the configuration: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the configuration must be a mapping")
        data = loaded
    settings = _apply_env(_build(Settings, data, str(path or "defaults"), ()), env)
    _check_boxes(settings.ami, str(path or "environment"))
    if settings.webhooks.url:
        settings.webhooks.signing_key()
    if settings.recordings_retention_days < 0:
        raise ConfigError("recordings_retention_days must be 0 (keep) or a number of days")
    problems = check_settings(settings.numbers)
    if problems:
        raise ConfigError(f"{path or 'environment'}: numbers: {'; '.join(problems)}")
    return settings


def environment_warnings(env: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each ``IVR_*`` variable that sets nothing (``IVR_LOG_LEVL is not a
    setting; did you mean IVR_LOG_LEVEL?``); the project's other variables are known."""
    known = setting_variables(Settings, _SECRETS)
    return unknown_variables(os.environ if env is None else env, known)


def _check_boxes(ami: AmiSettings, origin: str) -> None:
    try:
        boxes = ami.box_list()
    except ValueError as exc:
        raise ConfigError(f"{origin}: ami.boxes: {exc}") from None
    check_boxes(boxes, origin)


def _build(cls: Any, data: Mapping[str, Any], origin: str, prefix: tuple[str, ...]) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{origin}: {_unknown_keys(unknown, sorted(known), prefix)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        f = known[name]
        if (*prefix, name) in _SECRETS:
            raise ConfigError(
                f"{origin}: put {'.'.join((*prefix, name))} in the environment "
                f"(IVR_{'_'.join((*prefix, name)).upper()} or ..._FILE), not here"
            )
        section = f.default_factory
        if section is not dataclasses.MISSING and dataclasses.is_dataclass(section):
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: '{name}' must be a mapping")
            values[name] = _build(section, value, origin, (*prefix, name))
        else:
            key = ".".join((*prefix, name))
            values[name] = convert(value, f.default, f"{origin}: {key}", key)
    return cls(**values)


def _unknown_keys(unknown: list[str], known: list[str], prefix: tuple[str, ...]) -> str:
    """``unknown setting agi.prot (did you mean agi.port?); settings under agi: ...``."""
    named = []
    for key in unknown:
        close = [".".join((*prefix, k)) for k in close_names(str(key), known)]
        hint = f" ({did_you_mean(close)})" if close else ""
        named.append(f"{'.'.join((*prefix, str(key)))}{hint}")
    where = f"settings under {'.'.join(prefix)}" if prefix else "top-level settings"
    return f"unknown setting {', '.join(named)}; {where}: {', '.join(known)}"


def _apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    top: dict[str, Any] = {}
    for f in fields(Settings):
        current = getattr(settings, f.name)
        if dataclasses.is_dataclass(current):
            changes: dict[str, Any] = {}
            for sub in fields(current):
                key = f"IVR_{f.name}_{sub.name}".upper()
                if (f.name, sub.name) in _SECRETS:
                    secret = _secret(env, key)
                    if secret is not None:
                        changes[sub.name] = secret
                elif key in env:
                    changes[sub.name] = convert(env[key], sub.default, key, f"{f.name}.{sub.name}")
            if changes:
                top[f.name] = replace(current, **changes)  # type: ignore[type-var]
        elif f"IVR_{f.name}".upper() in env:
            key = f"IVR_{f.name}".upper()
            top[f.name] = convert(env[key], f.default, key, f.name)
    return replace(settings, **top)


def _secret(env: Mapping[str, str], key: str) -> Secret | None:
    if env.get(key):
        return Secret(env[key].encode())
    file = env.get(f"{key}_FILE")
    if file:
        try:
            return Secret(Path(file).read_bytes().strip())
        except OSError as exc:
            raise ConfigError(f"{key}_FILE: cannot read {file}: {exc.strerror}") from None
    return None
