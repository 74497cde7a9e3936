"""Celery tasks: thin wrappers around `broker.conversations.turns` and `broker.delivery.queues`."""

from __future__ import annotations

import time
from functools import cache

from celery import shared_task

from broker import __version__
from broker.conversations import turns
from broker.core import metrics
from broker.core.connection import Redis, connect
from broker.core.settings import Settings
from broker.delivery import queues
from broker.delivery.http_client import DeliveryClient
from workers.bot_actions import WorkerActions
from workers.celery_app import DELIVER_TASK, TURN_TASK, CelerySender, settings_of
from workers.delivery_pool import DeliveryPool


@cache
def _process() -> tuple[Settings, Redis, CelerySender, DeliveryPool, WorkerActions]:
    """What one worker process shares between its tasks and threads."""
    from celery import current_app

    settings = settings_of(current_app)
    r = connect(settings.redis_url, sentinel_master=settings.sentinel_master)
    metrics.start(r, settings)
    client = DeliveryClient(
        settings.outbound_allowlist,
        user_agent=f"Switchboard-Webhooks/{__version__}",
        pool_size=settings.delivery_concurrency,
    )
    sender = CelerySender(current_app)
    pool = DeliveryPool(
        r,
        lambda ref: queues.work_queue(r, settings, sender, client, ref),
        size=settings.delivery_concurrency,
        per_endpoint=settings.endpoint_concurrency,
    )
    return settings, r, sender, pool, WorkerActions(settings)


@shared_task(name=TURN_TASK)
def bot_turn(conversation_key: str) -> int:
    settings, r, sender, _, actions = _process()
    started = time.monotonic()
    outcome = "error"
    try:
        processed = turns.run_pending(r, settings, sender, conversation_key, actions)
        outcome = "ok"
    finally:
        metrics.count(metrics.BOT_TURNS, outcome)
        metrics.observe(metrics.BOT_TURN_DURATION, time.monotonic() - started)
    metrics.count(metrics.BOT_TURN_MESSAGES, n=processed)
    return processed


@shared_task(name=DELIVER_TASK)
def deliver(queues: list[str]) -> int:
    """Hand several delivery queues to this process's delivery threads, and return at once.

    One task moves many deliveries: each queue is worked, in order, until it must wait.
    The task does not wait for the attempts; their queues' claims on `sb:due` (not
    this task's acknowledgement) bring them back if the process dies.
    """
    _, _, _, pool, _ = _process()
    return len(queues) - pool.offer(queues)
