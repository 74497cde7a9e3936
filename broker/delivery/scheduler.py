"""The scheduler's side of the delivery queues: hand out due retries and expired claims, and
drop index entries of records that expired."""

from __future__ import annotations

from broker.core import clock, ids, keys, schedules
from broker.core.connection import Redis, index_shards
from broker.core.defaults import SCHEDULER_BATCH, SCHEDULER_PASS_BATCHES
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from broker.delivery import delivery_index, endpoint_store
from broker.delivery.endpoint import delivery_lease


def hand_out_queues(
    r: Redis, settings: Settings, sender: TaskSender, *, max_batches: int = SCHEDULER_PASS_BATCHES
) -> int:
    """Send the due delivery queues to the workers; returns how many."""
    handed = 0
    busy = keys.shards(keys.DUE, index_shards(r))
    for _ in range(max_batches):
        if not busy:
            break
        now = clock.now()
        args = [now, now + delivery_lease(settings), SCHEDULER_BATCH, ids.random_hex(6)]
        taken = schedules.take_due(r, "due_hand_out", busy, args)
        if taken.members:
            sender.deliver(taken.members)
            handed += len(taken.members)
        taken.raise_error()
        # A shard that had fewer than a batch due has no more.
        busy = [
            shard
            for shard, got in zip(busy, taken.by_shard, strict=True)
            if len(got) == SCHEDULER_BATCH
        ]
    return handed


def forget_expired(r: Redis, *, max_batches: int = SCHEDULER_PASS_BATCHES) -> int:
    """Take the deliveries whose record has just expired off the delivery listings, at each
    pass, so that a listing's count agrees with what it finds."""
    return delivery_index.forget_expired(r, max_chunks=max_batches)


def housekeep(r: Redis, settings: Settings) -> None:
    """Drop the dead-letter index entries of records that have expired; finish endpoint
    removals that were cut short."""
    endpoint_store.resume_removals(r)
    oldest = clock.now_ms() - settings.dead_retention * 1000
    r.zremrangebyscore(keys.DEAD, "-inf", oldest)
    for endpoint_id in r.zrange(keys.ENDPOINTS, 0, -1):
        r.zremrangebyscore(keys.endpoint_dead(endpoint_id), "-inf", oldest)
