"""The scheduler's side of the delivery queues: hand out due retries and expired claims, and
drop index entries of records that expired."""

from __future__ import annotations

from broker.core import clock, keys, schedules
from broker.core.connection import Redis
from broker.core.defaults import SCHEDULER_BATCH
from broker.core.sender import TaskSender
from broker.core.settings import Settings


def hand_out_queues(
    r: Redis, settings: Settings, sender: TaskSender, *, max_batches: int = 20
) -> int:
    """Send the due delivery queues to the workers; returns how many."""
    handed = 0
    for _ in range(max_batches):
        refs = schedules.claim(
            r, keys.DUE, settings.claim_lease + settings.total_timeout, SCHEDULER_BATCH
        )
        if not refs:
            break
        sender.deliver(refs)
        handed += len(refs)
    return handed


def housekeep(r: Redis, settings: Settings) -> None:
    """Drop index entries of records that have expired."""
    now_ms = clock.now_ms()
    pipe = r.pipeline(transaction=False)
    pipe.zremrangebyscore(keys.DELIVERIES, "-inf", now_ms - settings.log_retention * 1000)
    pipe.zremrangebyscore(keys.DEAD, "-inf", now_ms - settings.dead_retention * 1000)
    pipe.execute()
    for endpoint_id in r.zrange(keys.ENDPOINTS, 0, -1):
        r.zremrangebyscore(
            keys.endpoint_deliveries(endpoint_id), "-inf", now_ms - settings.log_retention * 1000
        )
