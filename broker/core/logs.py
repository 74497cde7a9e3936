"""Log lines: one JSON object per event, with the ids it concerns, and never a secret.

An event is logged with `event(log, level, what, **ids)`: the ids (`messageId`, `sessionId`,
`deliveryId`, `endpointId`, ...) become fields of the line, next to `time`, `level`,
`logger` and `event`. Every line, ours or a library's, goes through `redact` first, so a
token, a signing secret or a password in a URL never reaches the log.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from broker.core import clock
from broker.core.errors import ConfigError
from broker.core.redaction import redact

FORMATS = ("json", "text")
_FIELDS = "switchboard_fields"
#: The loggers of our own packages.
_OURS = ("broker", "web", "workers", "switchboard")
#: Loggers that say the same thing over and over while Redis or Celery's broker is away
#: (each request, each queue, each reconnection): their repeats are thinned out (`Repeats`).
_THINNED = (
    "web.errors",
    "workers.turn_runners",
    "workers.scheduler",
    "broker.delivery.delivery_loop",
    "broker.delivery.endpoint_cache",
    "broker.core.metrics",
    "celery.worker.consumer.consumer",
)
#: One line of a kind from a thinned logger at most this often (seconds).
REPEATS_EVERY = 30.0
#: Kinds of line a `Repeats` remembers at most.
_KINDS = 256


def event(log: logging.Logger, level: int, what: str, **fields: Any) -> None:
    """Log one event, with the ids it concerns as fields of its line (None ones left out)."""
    if log.isEnabledFor(level):
        given = {name: value for name, value in fields.items() if value is not None}
        log.log(level, what, extra={_FIELDS: given})


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, event, the event's fields, and the
    exception if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": clock.iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        for name, value in getattr(record, _FIELDS, {}).items():
            line[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Plain lines for people, with the event's fields as name=value, secrets masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, _FIELDS, {})
        if fields:
            text += " " + " ".join(f"{name}={value}" for name, value in fields.items())
        return redact(text)


class Repeats(logging.Filter):
    """Lets a line through, then leaves out the lines of the same kind for `every` seconds;
    the next one let through says how many. A kind is the level, the text before its values
    are put in (a queue's id, say), and the error the line carries, if any (`_error_of`):
    another error is another kind."""

    def __init__(self, every: float = REPEATS_EVERY, now: Callable[[], float] = time.monotonic):
        super().__init__()
        self.every = every
        self._now = now
        #: Per kind: when one was last let through, and how many were left out since.
        self._kinds: dict[tuple[int, str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.levelno, str(record.msg)[:200], _error_of(record))
        now = self._now()
        with self._lock:
            last, left_out = self._kinds.get(kind, (float("-inf"), 0))
            if now - last < self.every:
                self._kinds[kind] = (last, left_out + 1)
                return False
            if len(self._kinds) >= _KINDS and kind not in self._kinds:
                self._kinds.clear()
            self._kinds[kind] = (now, 0)
        if left_out:
            record.msg = f"{record.msg} [{left_out} more like it not logged since the last]"
        return True


def _error_of(record: logging.LogRecord) -> str:
    """The error a line carries, as far as it makes the line's kind: a traceback's exception
    whole, an exception among the values by its type (its text names a command, a key)."""
    if record.exc_info and record.exc_info[1]:
        error = record.exc_info[1]
        return f"{type(error).__name__}: {error}"[:200]
    values = record.args if isinstance(record.args, tuple) else ()
    return " ".join(type(v).__name__ for v in values if isinstance(v, BaseException))


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, on standard error."""


def configure(level: str, log_format: str) -> None:
    """Log to standard error at `level`, in `log_format` ("json" or "text"); like
    `logging.basicConfig`, nothing changes where the process's logging is already set up
    (a test runner, an application that embeds us)."""
    if log_format not in FORMATS:
        raise ConfigError(f"SWITCHBOARD_LOG_FORMAT must be one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    if any(not isinstance(handler, _Handler) for handler in root.handlers):
        return
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Our events keep their level where a library sets the root's (Celery's --loglevel).
    for name in _OURS:
        logging.getLogger(name).setLevel(level)
    for name in _THINNED:
        thinned = logging.getLogger(name)
        if not any(isinstance(f, Repeats) for f in thinned.filters):
            thinned.addFilter(Repeats())
