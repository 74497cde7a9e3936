"""The scheduler process: promotes due retries, recovers dead workers' work, fires
conversation timers, keeps house."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from broker import bot_removal, history
from broker.conversations import scheduler as conversation_scheduler
from broker.core import heartbeats, logs
from broker.core.connection import REDIS_TROUBLE, Redis, connect
from broker.core.defaults import HOUSEKEEPING_INTERVAL, LOOP_STUCK_AFTER, METRICS_SAMPLE_INTERVAL
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from broker.delivery import scheduler as delivery_scheduler
from workers.celery_app import CelerySender, check_broker, make_celery

log = logging.getLogger(__name__)
#: Says when Redis answers again after the trouble logged here.
redis_outage = logs.RedisOutage(log)


def tick(r: Redis, settings: Settings, sender: TaskSender) -> None:
    """One pass: due delivery queues, stalled bot turns, due conversation timers, and the
    listings of deliveries whose records expired."""
    queues = delivery_scheduler.hand_out_queues(r, settings, sender)
    delivery_scheduler.forget_expired(r)
    turns = conversation_scheduler.hand_out_turns(r, settings, sender)
    timers = conversation_scheduler.fire_timers(r, settings, sender)
    if queues or turns or timers:
        log.debug("handed out %d queue(s), %d turn(s), %d timer(s)", queues, turns, timers)


def housekeep(r: Redis, settings: Settings) -> None:
    """Each package's housekeeping, and the removals of bots that were cut short."""
    delivery_scheduler.housekeep(r, settings)
    conversation_scheduler.housekeep(r, settings)
    bot_removal.resume_removals(r)


def run(settings: Settings, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        # A hang-up too: else it ends at once, its heartbeat left alive for a while.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, on_signal)
    r = connect(settings.redis_url, sentinel_master=settings.sentinel_master)
    app = make_celery(settings)
    check_broker(app)
    sender = CelerySender(app, r)
    # Its heartbeat says it is alive only while its passes go on.
    progress = heartbeats.Progress(max(LOOP_STUCK_AFTER, 5 * settings.scheduler_interval))
    progress.mark("scheduler")
    beating = heartbeats.start_thread(r, "scheduler", progress)
    log.info("scheduler started (every %.2f s)", settings.scheduler_interval)
    next_housekeeping = next_sample = time.monotonic()
    try:
        while not stop.is_set():
            progress.mark("scheduler")
            began = time.monotonic()
            try:
                tick(r, settings, sender)
                redis_outage.ended()
                if time.monotonic() >= next_housekeeping:
                    housekeep(r, settings)
                    next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL
                if time.monotonic() >= next_sample:
                    history.sample(r)
                    next_sample = time.monotonic() + METRICS_SAMPLE_INTERVAL
            except REDIS_TROUBLE as exc:
                log.warning("scheduler pass failed, trying again: %s", exc)
                redis_outage.began(since=began)
                stop.wait(1.0)
            stop.wait(settings.scheduler_interval)
    finally:
        beating.set()
        log.info("scheduler stopped")
