"""Celery's "Frequent restarts detected" (`workers.celery_logs.LostConnectionRestarts`): after lost
broker connections, as in a Redis failover, one WARNING without a traceback; after anything
else, Celery's CRITICAL as it is."""

from __future__ import annotations

import logging
import sys
import warnings

import pytest
import redis
from billiard.exceptions import RestartFreqExceeded
from celery.exceptions import CPendingDeprecationWarning
from celery.worker.consumer.consumer import CONNECTION_ERROR, CONNECTION_RETRY

from broker.core import logs
from workers.celery_logs import (
    CELERY_RESTART_WINDOW,
    CONSUMER_LOGGER,
    LostConnectionRestarts,
    tame_celery_logs,
)

NOREPLICAS = redis.ResponseError("NOREPLICAS Not enough good replicas to write.")


def line(
    msg: str, *args: object, level: int = logging.WARNING, at: float = 100.0
) -> logging.LogRecord:
    record = logging.LogRecord(CONSUMER_LOGGER, level, __file__, 1, msg, args, None)
    record.created = at
    return record


def restart_storm(at: float = 100.0) -> logging.LogRecord:
    """Celery's line, as `Consumer.start` logs it."""
    try:
        raise RestartFreqExceeded("5 in 1s")
    except RestartFreqExceeded as exc:
        record = line("Frequent restarts detected: %r", exc, level=logging.CRITICAL, at=at)
        record.exc_info = sys.exc_info()
    return record


@pytest.mark.parametrize(
    "lost",
    [
        line("%s (%r)", CONNECTION_RETRY, NOREPLICAS, at=99.9),
        line(
            CONNECTION_ERROR,
            "redis://127.0.0.1:6379/0",
            NOREPLICAS,
            "Trying to reconnect...",
            level=logging.ERROR,
            at=99.9,
        ),
        # As `broker.core.redaction` leaves it once it masked the text: the text, no values.
        line(f"{CONNECTION_RETRY} (server:ResponseError)", at=99.9),
    ],
)
def test_restarts_after_a_lost_connection_are_one_warning_without_a_traceback(
    lost: logging.LogRecord,
) -> None:
    restarts = LostConnectionRestarts()
    assert restarts.filter(lost) and lost.levelno != logging.CRITICAL
    storm = restart_storm()
    assert restarts.filter(storm)
    assert (storm.levelno, storm.levelname) == (logging.WARNING, "WARNING")
    assert storm.exc_info is None
    assert storm.getMessage() == (
        "Frequent restarts detected (5 in 1s) after the broker connection was lost"
    )


def test_restarts_after_anything_else_stay_critical_with_their_traceback() -> None:
    restarts = LostConnectionRestarts()
    assert restarts.filter(line("Connection to broker lost: an unrelated line", at=99.9))
    for storm in (restart_storm(), restart_storm(at=101.0)):
        assert restarts.filter(storm)
        assert storm.levelno == logging.CRITICAL and storm.exc_info is not None
    old = line("%s (%r)", CONNECTION_RETRY, NOREPLICAS, at=100.0)
    assert restarts.filter(old)
    later = restart_storm(at=100.0 + CELERY_RESTART_WINDOW + 0.1)
    assert restarts.filter(later) and later.levelno == logging.CRITICAL


def test_the_filter_sees_the_lost_connections_that_repeats_leaves_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`broker.core.logs` thins the consumer's repeated lines out: the second lost connection
    in 30 s is not logged, yet the restarts that follow it are still about it."""
    consumer = logging.getLogger(CONSUMER_LOGGER)
    monkeypatch.setattr(consumer, "filters", [logs.Repeats()])
    tame_celery_logs()
    tame_celery_logs()
    assert [type(f) for f in consumer.filters] == [LostConnectionRestarts, logs.Repeats]
    with caplog.at_level(logging.WARNING, logger=CONSUMER_LOGGER):
        consumer.handle(line("%s (%r)", CONNECTION_RETRY, NOREPLICAS, at=10.0))
        consumer.handle(line("%s (%r)", CONNECTION_RETRY, NOREPLICAS, at=100.0))
        consumer.handle(restart_storm(at=100.5))
    assert [(r.levelname, r.created) for r in caplog.records] == [
        ("WARNING", 10.0),
        ("WARNING", 100.5),
    ]


def test_celerys_notice_on_cancelling_tasks_is_left_out_after_its_log_setup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with warnings.catch_warnings():
        # What Celery's log setup does at a worker's start (celery/app/log.py).
        warnings.filterwarnings("always", category=CPendingDeprecationWarning)
        logging.captureWarnings(True)
        try:
            tame_celery_logs()
            with caplog.at_level(logging.WARNING, logger="py.warnings"):
                warnings.warn(
                    CPendingDeprecationWarning("\nIn Celery 5.1 we introduced an optional ..."),
                    stacklevel=1,
                )
                warnings.warn(CPendingDeprecationWarning("another notice"), stacklevel=1)
        finally:
            logging.captureWarnings(False)
    assert [
        record.getMessage() for record in caplog.records if "Celery" in record.getMessage()
    ] == []
    assert any("another notice" in record.getMessage() for record in caplog.records)
