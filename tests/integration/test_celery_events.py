"""Celery's events from a real worker, as Flower reads them off the broker: task events for
the deliveries the scheduler hands out (here a retry), and the worker's heartbeats."""

from __future__ import annotations

import threading
from typing import Any

from broker.core.settings import Settings
from tests.integration.stacks import Api, stack_env
from tests.polling import wait_until
from tests.receivers import Answer, Receiver
from workers.celery_app import DELIVER_TASK, make_celery


def test_workers_send_the_events_flower_reads(api: Api, receiver: Receiver) -> None:
    app = make_celery(Settings.from_env(stack_env()))
    seen: list[dict[str, Any]] = []
    listening = threading.Event()

    def capture() -> None:
        with app.connection() as connection:
            events = app.events.Receiver(connection, handlers={"*": seen.append})
            listening.set()
            events.capture(limit=None, timeout=None, wakeup=True)

    threading.Thread(target=capture, daemon=True).start()
    listening.wait(10)
    # The first attempt fails: its retry goes to a worker as a Celery task.
    receiver.behaviour = lambda hit: Answer(500 if hit.try_number == 1 else 200)
    channel = api.echo_channel(receiver.url, retrySchedule=[0, 0.05])

    def task_events() -> set[tuple[str, str]]:
        assert api.send(channel, "flower", "hi").status_code == 202
        names = {e["uuid"]: e["name"] for e in list(seen) if e.get("name")}
        return {
            (e["type"], names.get(e.get("uuid", ""), ""))
            for e in list(seen)
            if e["type"].startswith("task-")
        }

    wanted = {("task-received", DELIVER_TASK), ("task-succeeded", DELIVER_TASK)}
    wait_until(lambda: wanted <= task_events(), timeout=30, interval=0.5, what=str(wanted))
    wait_until(lambda: any(e["type"] == "worker-heartbeat" for e in list(seen)), timeout=30)
