"""Starting a Celery worker process with Switchboard's queues and a heartbeat, and stopping
it gracefully."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from celery.signals import celeryd_after_setup, worker_shutdown, worker_shutting_down

from broker.core import heartbeats, metrics
from broker.core.defaults import CELERY_STOP_WAIT, LOOP_STUCK_AFTER
from broker.core.settings import Settings
from broker.delivery.delivery_loop import DRAIN_WRITE_TIMEOUT
from workers import turn_runners
from workers.celery_app import (
    DELIVERY_QUEUE,
    check_broker,
    make_celery,
    no_restore_when_the_connection_is_lost,
    refusals_are_connection_trouble,
)
from workers.celery_logs import tame_celery_logs
from workers.process import process

log = logging.getLogger(__name__)

_heartbeat: list[threading.Event] = []
_runners: list[turn_runners.Runners] = []
#: Set when the worker is told to stop; a worker that stops otherwise failed.
_told_to_stop = threading.Event()
#: Set when Switchboard's part of the worker begins to stop (`_stop`), by Celery or not.
_stop_began = threading.Event()
_stop_lock = threading.Lock()


@celeryd_after_setup.connect
def _start(sender: Any, instance: Any, **_: Any) -> None:
    """The heartbeat, the delivery loop and the turn runners start before Celery connects
    to its broker: bot turns and deliveries need only Redis, and a broker that is away
    (RabbitMQ restarting) must not hold them up."""
    settings: Settings = instance.app.conf.switchboard_settings
    shared = process()
    # Its heartbeat says it is alive only while its turn runners and its event loop go round.
    progress = heartbeats.Progress(LOOP_STUCK_AFTER)
    shared.deliveries.report_to(progress)
    _runners.append(
        turn_runners.start(shared, settings.turn_runners, settings.turn_runners_away, progress)
    )
    _heartbeat.append(heartbeats.start_thread(shared.redis, "worker", progress))


@worker_shutting_down.connect
def _stop_taking(**_: Any) -> None:
    """At the signal, before Celery's own shutdown: no new turns, no new attempts; and the
    watchdog starts."""
    _told_to_stop.set()
    if _runners:
        for runners in _runners:
            runners.stopping.set()
        grace = process().settings.shutdown_grace
        process().deliveries.stop_taking()
        threading.Thread(
            target=see_it_ends,
            args=(_stop, _stop_began, CELERY_STOP_WAIT, grace + DRAIN_WRITE_TIMEOUT),
            name="stop-watchdog",
            daemon=True,
        ).start()


def see_it_ends(
    stop: Callable[[], None],
    stop_began: threading.Event,
    celery_wait: float,
    stopping: float,
    end: Callable[[int], None] = os._exit,
) -> None:
    """The watchdog of a worker told to stop. Celery's shutdown can hang for good: with its
    broker gone at that moment, it retried a connection for ever (its event heartbeat's),
    never reaching `worker_shutdown`, and the worker outlived its `switchboard run` by
    hours. Should Celery not begin within `celery_wait` seconds, `stop` (which takes
    `stopping` seconds at most) runs here; should the process still be there once both
    could have passed, it ends (`end`)."""
    deadline = time.monotonic() + celery_wait + stopping
    if not stop_began.wait(celery_wait):
        log.error(
            "Celery did not stop within %g s of being told to: stopping without it", celery_wait
        )
        stop()
    threading.Event().wait(max(deadline - time.monotonic(), 0.0))
    log.error("the worker did not end after it stopped its work: ending it")
    logging.shutdown()
    end(0)


@worker_shutdown.connect
def _stop(**_: Any) -> None:
    """A warm shutdown (SIGTERM): the turns being run commit, the attempts in flight end and
    are recorded, every other delivery queue goes back to the scheduler at once, and the
    counts are written, within `shutdown_grace`; then the heartbeat goes. Once only, whether
    Celery or its watchdog (`see_it_ends`) calls it."""
    with _stop_lock:
        if not _runners or _stop_began.is_set():
            return
        _stop_began.set()
    shared = process()
    deadline = time.monotonic() + shared.settings.shutdown_grace
    for runners in _runners:
        runners.stop(timeout=deadline - time.monotonic())
    shared.deliveries.drain(max(deadline - time.monotonic(), 0.0))
    metrics.flush()
    for event in _heartbeat:
        event.set()


def run(
    settings: Settings,
    *,
    concurrency: int = 4,
    pool: str = "threads",
    loglevel: str = "INFO",
) -> None:
    app = make_celery(settings)
    check_broker(app)
    refusals_are_connection_trouble()
    no_restore_when_the_connection_is_lost()
    tame_celery_logs()
    try:
        app.worker_main(
            [
                "worker",
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                f"--queues={DELIVERY_QUEUE}",
                f"--loglevel={loglevel}",
                "--without-gossip",
                "--without-mingle",
                # Celery's own heartbeats stay on: Flower tells live workers by them.
            ]
        )
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if not code and not _told_to_stop.is_set():
        # Celery ends a worker it cannot go on with with exit code 0: a supervisor that only
        # restarts processes that failed would leave it stopped.
        code = 1
    raise SystemExit(code)
