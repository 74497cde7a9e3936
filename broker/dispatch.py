"""The scheduler's side of the queues: hand out due retries, expired claims and stalled turns,
and fire the conversations' timers."""

from __future__ import annotations

from dataclasses import dataclass

from broker import clock, handover, keys, scripts
from broker.defaults import SCHEDULER_BATCH
from broker.redis_conn import Redis
from broker.sender import TaskSender
from broker.settings import Settings


@dataclass(frozen=True)
class Tick:
    queues: int
    turns: int
    timers: int = 0


def claim(r: Redis, schedule_key: str, lease: float, limit: int) -> list[str]:
    """Members of a schedule that are due, each pushed out by `lease` so no one else takes it."""
    now = clock.now()
    return list(scripts.run(r, "claim_due", [schedule_key], [now, now + lease, limit]))


def tick(r: Redis, settings: Settings, sender: TaskSender, *, max_batches: int = 20) -> Tick:
    """One pass of the scheduler; returns how many queues, sessions and timers it handed out."""
    queues = turns = 0
    for _ in range(max_batches):
        refs = claim(r, keys.DUE, settings.claim_lease + settings.total_timeout, SCHEDULER_BATCH)
        if not refs:
            break
        sender.deliver(refs)
        queues += len(refs)
    for session in claim(r, keys.TURNS, settings.claim_lease, SCHEDULER_BATCH * max_batches):
        sender.bot_turn(session)
        turns += 1
    timers = claim(r, keys.TIMERS, settings.claim_lease, SCHEDULER_BATCH * max_batches)
    handover.fire_timers(r, settings, sender, timers)
    return Tick(queues, turns, len(timers))


def housekeep(r: Redis, settings: Settings) -> None:
    """Drop index entries of records that have expired."""
    now_ms = clock.now_ms()
    pipe = r.pipeline()
    pipe.zremrangebyscore(keys.DELIVERIES, "-inf", now_ms - settings.log_retention * 1000)
    pipe.zremrangebyscore(keys.DEAD, "-inf", now_ms - settings.dead_retention * 1000)
    pipe.execute()
    for endpoint_id in r.zrange(keys.ENDPOINTS, 0, -1):
        r.zremrangebyscore(
            keys.endpoint_deliveries(endpoint_id), "-inf", now_ms - settings.log_retention * 1000
        )
