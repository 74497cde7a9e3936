"""Replay: an operator sends a delivered or dead-lettered delivery again."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from broker.core import clock, ids, keys, logs, scripts
from broker.core.connection import Redis, index_shards
from broker.core.errors import Conflict, NotFound
from broker.delivery import health, records
from broker.delivery.records import due_member, queue_ref

log = logging.getLogger(__name__)


def replay(r: Redis, delivery_id: str) -> bool:
    """Send a delivered or dead-lettered delivery again; False if it is already under way."""
    endpoint_id = _queue_again(r, delivery_id, dead_only=False)
    if endpoint_id is None:
        return False
    health.probe_soon(r, endpoint_id)
    return True


def _queue_again(r: Redis, delivery_id: str, *, dead_only: bool) -> str | None:
    """Put the delivery back on its queue; its endpoint's id, or None if it is already under
    way (or, `dead_only`, not dead). The endpoint's circuit is the caller's to open for a
    probe."""
    found = records.load(r, delivery_id)
    endpoint_id = found.endpoint_id
    if found.expires_at and found.expires_at <= clock.now():
        raise Conflict(
            f"delivery {delivery_id!r} expired at {clock.iso(found.expires_at)}: what waited "
            "for its answer has given up on it, so it is not sent again"
        )
    if not r.exists(keys.endpoint(endpoint_id)):
        raise Conflict(
            f"delivery {delivery_id!r} cannot be sent again: its endpoint {endpoint_id!r} "
            "was removed"
        )
    conversation_key = ids.conversation_of_delivery(delivery_id)
    ref = queue_ref(conversation_key, endpoint_id)
    # The scheduler is told first (sb:due is not in the conversation's hash slot): should we
    # die right after, the queue is looked at anyway; a queue that holds nothing new is
    # simply let go again.
    r.zadd(keys.due(ref, index_shards(r)), {due_member(ref, ids.random_hex(8)): clock.now()})
    result = scripts.run(
        r,
        "replay",
        [
            keys.delivery(conversation_key, delivery_id),
            keys.fifo(conversation_key, endpoint_id),
            keys.delivery_attempts(conversation_key, delivery_id),
        ],
        [delivery_id, "dead" if dead_only else ""],
    )
    if result == -1:
        raise NotFound(f"no delivery {delivery_id!r}")
    if result == 0:
        return None
    r.zrem(keys.DEAD, delivery_id)
    r.zrem(keys.endpoint_dead(endpoint_id), delivery_id)
    logs.event(
        log, logging.INFO, "delivery replayed", deliveryId=delivery_id, endpointId=endpoint_id
    )
    return endpoint_id


def replay_many(r: Redis, delivery_ids: Sequence[str]) -> int:
    """Replay several dead letters; returns how many were queued again. A delivery that is
    no longer dead (another replay sent it again: two bulk replays at once must not send
    it twice), whose record expired, whose time ran out, or whose endpoint was removed, is
    passed over."""
    replayed = 0
    endpoints: set[str] = set()
    for delivery_id in delivery_ids:
        try:
            endpoint_id = _queue_again(r, delivery_id, dead_only=True)
        except (NotFound, Conflict):
            continue
        if endpoint_id is not None:
            replayed += 1
            endpoints.add(endpoint_id)
    for endpoint_id in endpoints:  # once an endpoint, not once a delivery
        health.probe_soon(r, endpoint_id)
    return replayed
