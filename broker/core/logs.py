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

from broker.core import clock, escapes, redaction
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
    "switchboard.connection_cap",
)
#: A line that `Repeats` lets through whatever came before it.
_NEVER_THINNED = "switchboard_never_thinned"
#: One line of a kind from a thinned logger at most this often (seconds).
REPEATS_EVERY = 30.0
#: Kinds of line a `Repeats` remembers at most.
_KINDS = 256


def event(
    log: logging.Logger,
    level: int,
    what: str,
    *,
    exc_info: BaseException | None = None,
    **fields: Any,
) -> None:
    """Log one event, with the ids it concerns as fields of its line (None ones left out),
    and the traceback of `exc_info` if given."""
    if log.isEnabledFor(level):
        given = {name: value for name, value in fields.items() if value is not None}
        log.log(level, what, exc_info=exc_info, extra={_FIELDS: given})


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
        # One event a line for every reader: U+2028 or NEL ends a line for some.
        return escapes.json_line(json.dumps(line, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """Plain lines for people, with the event's fields as name=value, secrets masked. The
    text and the values are written on one line (`escapes.one_line`), a value holding a
    space, a quote or `=` in quotes: what a user sent cannot make a line or a field look
    like ours. A traceback follows on lines of its own."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = escapes.one_line(redact(super().formatMessage(record).rstrip()))
        fields = getattr(record, _FIELDS, {})
        return " ".join([text, *(f"{name}={_text_value(value)}" for name, value in fields.items())])

    def formatException(self, ei: Any) -> str:
        # Its lines stay lines; what they hold is escaped all the same.
        lines = super().formatException(ei).split("\n")
        return "\n".join(escapes.one_line(line) for line in lines)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _text_value(value: Any) -> str:
    text = escapes.one_line(redact(str(value)))
    if text and not any(c in text for c in ' "='):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
        if getattr(record, _NEVER_THINNED, False):
            return True
        template, value_types = getattr(record, redaction.LOGGED_AS, None) or (
            str(record.msg),
            redaction.value_types(record.args),
        )
        kind = (record.levelno, template[:200], _error_of(record, value_types))
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


def _error_of(record: logging.LogRecord, value_types: tuple[type, ...]) -> str:
    """The error a line carries, as far as it makes the line's kind: a traceback's exception
    whole, an exception among the values by its type (its text names a command, a key)."""
    if record.exc_info and record.exc_info[1]:
        error = record.exc_info[1]
        return f"{type(error).__name__}: {error}"[:200]
    return " ".join(kind.__name__ for kind in value_types if issubclass(kind, BaseException))


class RedisOutage:
    """The Redis trouble one role logged (`began`), so that the role says when Redis answers
    it again (`ended`) and after how long: else the last line an operator sees of it is the
    trouble. One per role and process."""

    def __init__(self, log: logging.Logger, now: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self._now = now
        #: When the trouble began; None while there is none ...
        self._since: float | None = None
        #: ... and whether that is when a call that failed was made, or only when the trouble
        #: was noticed (a call that hangs is noticed when it times out).
        self._from_a_call = False
        self._lock = threading.Lock()

    def began(self, since: float | None = None) -> None:
        """Trouble, in a call made at `since` (this clock's time) when the caller knows it."""
        at = self._now() if since is None else since
        with self._lock:
            if self._since is None or at < self._since:
                self._since, self._from_a_call = at, since is not None

    def ended(self) -> None:
        """Redis answered the role: one line if it had trouble."""
        if self._since is None:  # nearly always: no lock taken
            return
        with self._lock:
            since, self._since = self._since, None
        if since is None:
            return
        said = (
            "Redis reachable again after %.0f s"
            if self._from_a_call
            else "Redis reachable again; its trouble was noticed %.0f s ago"
        )
        self.log.warning(said, self._now() - since, extra={_NEVER_THINNED: True})


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
