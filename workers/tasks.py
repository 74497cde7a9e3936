"""Celery tasks: thin wrappers around `broker.turns` and `broker.delivery_queue`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache

from celery import shared_task

from broker import __version__, delivery_queue, turns
from broker.http_client import DeliveryClient
from broker.redis_conn import Redis, connect
from broker.settings import Settings
from workers.celery_app import DELIVER_TASK, TURN_TASK, CelerySender, settings_of


@cache
def _process() -> tuple[Settings, Redis, CelerySender, DeliveryClient, ThreadPoolExecutor]:
    """What one worker process shares between its tasks and threads."""
    from celery import current_app

    settings = settings_of(current_app)
    r = connect(settings.redis_url, sentinel_master=settings.sentinel_master)
    client = DeliveryClient(
        settings.outbound_allowlist,
        user_agent=f"Switchboard-Webhooks/{__version__}",
        pool_size=settings.delivery_concurrency,
    )
    executor = ThreadPoolExecutor(settings.delivery_concurrency, thread_name_prefix="deliver")
    return settings, r, CelerySender(current_app), client, executor


@shared_task(name=TURN_TASK)
def bot_turn(session_hash: str) -> int:
    settings, r, sender, _, _ = _process()
    return turns.run_pending(r, settings, sender, session_hash)


@shared_task(name=DELIVER_TASK)
def deliver(queues: list[str]) -> int:
    """Work through several delivery queues at once, each in its own thread."""
    settings, r, _, client, executor = _process()
    runs = executor.map(lambda ref: delivery_queue.work_queue(r, settings, client, ref), queues)
    return sum(run.attempts for run in runs)
