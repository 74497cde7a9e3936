"""Starting a Celery worker process with Switchboard's queues and a heartbeat."""

from __future__ import annotations

import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from broker.core import heartbeats
from broker.core.connection import connect
from broker.core.settings import Settings
from workers.celery_app import DELIVERY_QUEUE, TURN_QUEUE, make_celery

_beating: list[threading.Event] = []


@worker_ready.connect
def _start_heartbeat(sender: Any, **_: Any) -> None:
    settings: Settings = sender.app.conf.switchboard_settings
    r = connect(settings.redis_url, sentinel_master=settings.sentinel_master)
    _beating.append(heartbeats.start_thread(r, "worker"))


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    for event in _beating:
        event.set()


def run(
    settings: Settings,
    *,
    concurrency: int = 32,
    queues: str = f"{TURN_QUEUE},{DELIVERY_QUEUE}",
    pool: str = "threads",
    loglevel: str = "INFO",
) -> None:
    app = make_celery(settings)
    app.worker_main(
        [
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
            # Celery's own heartbeats stay on: Flower tells live workers by them.
        ]
    )
