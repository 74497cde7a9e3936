"""What one worker process shares between its Celery tasks and its own threads: settings,
a Redis client, the task sender, the delivery loop and the bot's action interface."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from celery import current_app

from broker.core import metrics
from broker.core.connection import Redis, connect
from broker.core.loop_thread import LoopThread
from broker.core.settings import Settings
from broker.delivery.delivery_loop import DeliveryLoop
from workers.bot_actions import WorkerActions
from workers.celery_app import CelerySender, settings_of


@dataclass(frozen=True)
class Process:
    settings: Settings
    redis: Redis
    sender: CelerySender
    deliveries: DeliveryLoop
    actions: WorkerActions


@cache
def process() -> Process:
    settings = settings_of(current_app)
    loop = LoopThread("deliveries")
    redis = connect(settings.redis_url, sentinel_master=settings.sentinel_master)
    metrics.start(redis, settings)
    return Process(
        settings,
        redis,
        CelerySender(current_app, redis),
        DeliveryLoop(settings, loop),
        WorkerActions(settings, loop),
    )


# A child of the prefork pool, forked once the main process had started its own, makes its
# own: the threads of the one it inherited did not come with it.
os.register_at_fork(after_in_child=process.cache_clear)
