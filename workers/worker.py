"""Starting a Celery worker process with Switchboard's queues and a heartbeat."""

from __future__ import annotations

import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from broker.core import heartbeats
from broker.core.settings import Settings
from workers import turn_runners
from workers.celery_app import DELIVERY_QUEUE, make_celery
from workers.process import process

_stopping: list[threading.Event] = []


@worker_ready.connect
def _start(sender: Any, **_: Any) -> None:
    """The heartbeat, the delivery loop and the turn runners start with the worker."""
    settings: Settings = sender.app.conf.switchboard_settings
    shared = process()
    _stopping.append(heartbeats.start_thread(shared.redis, "worker"))
    _stopping.append(turn_runners.start(shared, settings.turn_runners))


@worker_shutdown.connect
def _stop(**_: Any) -> None:
    for event in _stopping:
        event.set()


def run(
    settings: Settings,
    *,
    concurrency: int = 4,
    pool: str = "threads",
    loglevel: str = "INFO",
) -> None:
    app = make_celery(settings)
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
