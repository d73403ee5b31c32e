"""Log lines of ``ivr serve``: text for a terminal, or one JSON object per line for a collector.

Both formats print what the loggers hand them and nothing else: a call's lines were already
cleaned of its sensitive values by :class:`ivr.flow.redact.CallLog`, and no record attribute
is copied wholesale into a JSON line (an ``extra`` could hold anything). Lines about a call
carry its Asterisk ``uniqueid`` (``[1700000000.12]`` in text, ``"call_id"`` in JSON).
"""

from __future__ import annotations

import json
import logging
import time

from ivr.call.channel import readable

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
NO_CALL = "-"  # the text format's bracket for lines about no call in particular


class _UniqueIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "uniqueid"):
            record.uniqueid = NO_CALL
        return True


class _ReadableFormatter(logging.Formatter):
    """Caller bytes that were not UTF-8 appear as ``\\xe9`` in every line, whichever module
    logged them (a bare surrogate would make the stream handler fail the whole line)."""

    def format(self, record: logging.LogRecord) -> str:
        return readable(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601 with milliseconds), ``level``,
    ``logger``, ``message``, and ``call_id`` when the line is about a call; ``exception``
    holds the traceback of ``exc_info`` (a call's own tracebacks are already in its cleaned
    message)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, str] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": readable(record.getMessage()),
        }
        call_id = getattr(record, "uniqueid", NO_CALL)
        if call_id != NO_CALL:
            line["call_id"] = readable(str(call_id))
        if record.exc_info:
            line["exception"] = readable(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def setup_logging(level: str, log_format: str = "text") -> None:
    """Send every logger's lines at ``level`` and above to stderr, as ``log_format`` says
    (both checked by :func:`ivr.config.load_settings`)."""
    # The formats name no source file, thread or process: skip working them out for every
    # line (a stack walk per record; see "Optimization" in the logging HOWTO).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.addFilter(_UniqueIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            _ReadableFormatter("%(asctime)s %(levelname)s %(name)s [%(uniqueid)s] %(message)s")
        )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
