"""One error tree for the whole project, rooted at :class:`IvrError`."""

from __future__ import annotations

import yaml


class IvrError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(IvrError):
    """The configuration file or an environment override is invalid."""


class FlowError(IvrError):
    """A flow file is invalid. ``str()`` is ``file:line:col: node 'id': message``."""

    def __init__(
        self,
        message: str,
        *,
        file: str = "<flow>",
        line: int = 0,
        col: int = 0,
        node: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        self.node = node
        super().__init__(self.format())

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        who = f" node '{self.node}':" if self.node else ""
        return f"{where}:{who} {self.message}"


class FlowErrors(IvrError):
    """Several :class:`FlowError` found in one validation pass."""

    def __init__(self, errors: list[FlowError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class ProtocolError(IvrError):
    """The peer sent bytes that break the protocol; the connection must be closed."""


class AgiError(IvrError):
    """An AGI command failed."""


class AgiCommandInvalid(AgiError):
    """510: Asterisk does not know the command."""


class AgiUsageError(AgiError):
    """520: the command was sent with wrong arguments; ``usage`` holds Asterisk's help text."""

    def __init__(self, message: str, usage: str = "") -> None:
        self.usage = usage
        super().__init__(message)


class CallHangup(IvrError):
    """The caller hung up or the channel is gone (``HANGUP`` line or ``511``)."""


class ExpressionError(IvrError):
    """A branch condition or template is malformed or failed to evaluate."""


class HttpLookupError(IvrError):
    """An ``http`` node's request failed (timeout, connection, status, bad JSON)."""


class StoreError(IvrError):
    """The call-record store failed (wraps :class:`sqlite3.Error`); the message names the file."""


class DuplicateCallError(StoreError):
    """A call record with this ``call_id`` is already stored."""


class AudioSocketError(IvrError):
    """The AudioSocket side of a speech menu failed (no connection for the call, an error
    frame from Asterisk, prompt audio that cannot be streamed)."""


class AmiError(IvrError):
    """The Asterisk Manager Interface is down, refused an action, or did not answer in time."""


class SpeechError(IvrError):
    """A speech engine or model cannot be used (missing model, unreadable audio...)."""


class ExpressionSyntaxError(ExpressionError):
    """A condition or template is malformed; ``offset`` is the 0-based column in the source."""

    def __init__(self, message: str, offset: int) -> None:
        self.message = message
        self.offset = offset
        super().__init__(f"{message} (at column {offset + 1})")


class YamlRefused(IvrError, yaml.YAMLError):
    """Something a loader here refuses to compose, where it starts and in which flow node."""

    def __init__(self, message: str, event: yaml.Event, node: str | None) -> None:
        super().__init__(message)
        self.message = message
        mark = event.start_mark
        self.line, self.col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        self.node = node

    def at(self, file: str) -> str:
        """``file:line:col: message``, the way flow errors read."""
        return f"{file}:{self.line}:{self.col}: {self.message}"


class PromptSpecError(IvrError, ValueError):
    """A prompt value is malformed; ``path`` is relative to the prompt value."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        self.path = path
        super().__init__(message)


class HoursSpecError(IvrError, ValueError):
    """The hours spec is invalid. ``path`` locates the bad value, e.g. ``("open", "mon-fri", 1)``.

    ``str()`` is ``open.mon-fri[1]: '25:00' is not a time; use HH:MM, 00:00-24:00``.
    """

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{_hours_path(path)}: {message}")


def _hours_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "hours"


class GraphvizError(IvrError):
    """``dot`` is missing, timed out or failed."""


class PatternError(IvrError):
    """A flow's regular expression is malformed or uses syntax RE2 does not have."""


class BadQuery(IvrError, ValueError):
    """A query parameter the API cannot use (HTTP 400)."""


class ApiError(IvrError):
    """An error answer: ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class SimulationInputError(IvrError):
    """A token of the caller script is not understood."""


class LabError(IvrError):
    """The lab could not do what was asked; the message says why and what to do."""


class CampaignError(IvrError):
    """A campaign cannot be started or changed (bad list, unknown campaign...)."""


class TtsError(IvrError):
    """A prompt could not be rendered (no voice for the language, engine failure)."""


class NoAudio(TtsError):
    """The engine wrote an empty or cut file."""


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol does not allow (e.g. two AGI commands in
    flight, audio after an AudioSocket hangup)."""


class AgiCommandTimeout(AgiError):
    """Asterisk did not answer a command in time; the connection is closed and the call ends."""
