"""What Celery logs that Switchboard tames: lines that alarm or inform an operator for
nothing, during a Redis failover above all."""

from __future__ import annotations

import logging
import warnings

from billiard.exceptions import RestartFreqExceeded
from celery.exceptions import CPendingDeprecationWarning
from celery.worker.consumer.consumer import CONNECTION_ERROR, CONNECTION_RETRY

#: The logger of Celery's consumer, which restarts it after a lost broker connection.
CONSUMER_LOGGER = "celery.worker.consumer.consumer"
#: Celery's consumer says "Frequent restarts detected" at its 6th restart within this
#: many seconds (its `restart_state(maxR=5, maxT=1)`).
CELERY_RESTART_WINDOW = 1.0
#: How the consumer's lines that say its broker connection was lost begin.
_LOST_CONNECTION = (CONNECTION_RETRY, CONNECTION_ERROR.partition("%s")[0])

# Celery warns at every lost connection that its default for cancelling tasks will change;
# Switchboard sets it (workers/celery_app.py), so the warning says nothing to an operator.
_CANCEL_NOTICE = "In Celery 5.1 we introduced"
warnings.filterwarnings(
    "ignore", message=r"\s*" + _CANCEL_NOTICE, category=CPendingDeprecationWarning
)


class LostConnectionRestarts(logging.Filter):
    """Celery's consumer restarts after each lost connection to its broker, and logs
    "Frequent restarts detected" as CRITICAL, with a traceback, past 5 restarts in a second.
    During a Redis failover the old master answers READONLY or NOREPLICAS, which the
    transport takes as a lost connection (`refusals_are_connection_trouble`): the restarts
    come that fast while the worker recovers on its own, and the CRITICAL alarmed operators
    for nothing. That line becomes one WARNING without a traceback when the consumer lost
    its connection within the restarts' window; after anything else it stays CRITICAL."""

    def __init__(self) -> None:
        super().__init__()
        #: When the consumer last said its broker connection was lost.
        self._lost_at = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        storm = _restart_storm(record)
        if _says_the_connection_was_lost(record):
            self._lost_at = record.created
        elif storm is not None and record.created - self._lost_at <= CELERY_RESTART_WINDOW:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "Frequent restarts detected (%s) after the broker connection was lost"
            record.args = (storm,)
            record.exc_info, record.exc_text = None, None
        return True


def _says_the_connection_was_lost(record: logging.LogRecord) -> bool:
    """Whether the line is one of the consumer's saying its broker connection was lost: its
    text in `msg` or among its values, or in `msg` whole once `redaction` masked it."""
    values = record.args if isinstance(record.args, tuple) else ()
    return any(
        isinstance(text, str) and text.startswith(_LOST_CONNECTION)
        for text in (record.msg, *values)
    )


def _restart_storm(record: logging.LogRecord) -> BaseException | None:
    """The error of Celery's "Frequent restarts detected" line, if the line is that one."""
    error = record.exc_info[1] if record.exc_info else None
    return error if isinstance(error, RestartFreqExceeded) else None


class CancelNotice(logging.Filter):
    """Leaves out Celery's notice, at every lost connection, that its default for cancelling
    tasks will change: Switchboard sets it (workers/celery_app.py), so it says nothing to an
    operator. The `warnings` filter above does not hold once a worker starts: Celery's log
    setup has its pending deprecations always shown, through the `py.warnings` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _CANCEL_NOTICE not in record.getMessage()


def tame_celery_logs() -> None:
    """Install the filters above, once."""
    consumer_log = logging.getLogger(CONSUMER_LOGGER)
    if not any(isinstance(f, LostConnectionRestarts) for f in consumer_log.filters):
        # First: `Repeats` (broker.core.logs) leaves repeated lines out, and this filter
        # must see every lost connection.
        consumer_log.filters.insert(0, LostConnectionRestarts())
    warnings_log = logging.getLogger("py.warnings")
    if not any(isinstance(f, CancelNotice) for f in warnings_log.filters):
        warnings_log.addFilter(CancelNotice())
