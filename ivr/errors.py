"""One error tree for the whole project, rooted at :class:`IvrError`."""

from __future__ import annotations


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
