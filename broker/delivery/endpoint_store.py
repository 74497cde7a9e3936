"""Endpoints in Redis: save, load, delete, list; and removing delivery queues with what they
hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from broker.core import clock, ids, keys, metrics, record_change
from broker.core.connection import Redis
from broker.core.errors import NotFound
from broker.delivery.endpoint import Endpoint
from broker.delivery.records import split_ref

#: Deliveries removed per round trip when an endpoint goes.
_REMOVAL_CHUNK = 500


def save(r: Redis, endpoint: Endpoint) -> None:
    # The record first: should we die between the two, the endpoint works but is not listed
    # until it is saved again, and no listing names an endpoint that is not there.
    pipe = r.pipeline(transaction=False)
    pipe.hset(keys.endpoint(endpoint.id), mapping=endpoint.to_redis())
    pipe.zadd(keys.ENDPOINTS, {endpoint.id: clock.ms(endpoint.created_at)}, nx=True)
    pipe.execute()
    announce_change(r, endpoint.id)


def change(r: Redis, endpoint_id: str, how: Callable[[Endpoint], Endpoint]) -> Endpoint:
    """Change an endpoint's record by `how`, writing only the fields it changes, safely beside
    other requests changing it (`broker.core.record_change`); NotFound once it is gone."""
    written = record_change.change(
        r, keys.endpoint(endpoint_id), lambda read: how(Endpoint.from_redis(read)).to_redis()
    )
    if written is None:
        raise NotFound(f"no endpoint {endpoint_id!r}")
    announce_change(r, endpoint_id)
    return Endpoint.from_redis(written)


def rotate_secret(r: Redis, endpoint_id: str) -> Endpoint:
    """A new signing secret; the old one keeps signing beside it for
    SECRET_ROTATION_OVERLAP."""
    secret, now = ids.new_signing_secret(), clock.now()
    return change(r, endpoint_id, lambda read: read.rotated(secret, now))


def announce_change(r: Redis, endpoint_id: str) -> None:
    """Tell the workers to stop using what they kept of the endpoint (a command of its own: a
    Redis Cluster takes no PUBLISH in a pipeline)."""
    r.publish(keys.ENDPOINT_CHANGES, endpoint_id)


def load(r: Redis, endpoint_id: str) -> Endpoint:
    raw = r.hgetall(keys.endpoint(endpoint_id))
    if not raw:
        raise NotFound(f"no endpoint {endpoint_id!r}")
    return Endpoint.from_redis(raw)


def delete(r: Redis, endpoint_id: str) -> list[str]:
    """Remove an endpoint with everything under it: its health, its parked queues, and its
    deliveries with their attempts. Resumable: should it be cut short, housekeeping
    (`resume_removals`) finishes it. Returns the removed deliveries whose end a conversation
    was still waiting for (an offload's answer), which no worker will now record."""
    r.sadd(keys.REMOVING_ENDPOINTS, endpoint_id)
    # The record first: workers then dead-letter what its queues still hold.
    # One DEL a key: a Redis Cluster's pipeline takes no DEL of several keys.
    pipe = r.pipeline(transaction=False)
    for key in (
        keys.endpoint(endpoint_id),
        keys.endpoint_health(endpoint_id),
        keys.endpoint_recent(endpoint_id),
    ):
        pipe.delete(key)
    pipe.zrem(keys.ENDPOINTS, endpoint_id)
    pipe.execute()
    announce_change(r, endpoint_id)
    awaited: list[str] = []
    # Its dead letters are kept longer than its index of deliveries names them.
    for index in (keys.endpoint_deliveries(endpoint_id), keys.endpoint_dead(endpoint_id)):
        while chunk := r.zrange(index, 0, _REMOVAL_CHUNK - 1):
            awaited += _remove_deliveries(r, chunk)
            r.zrem(index, *chunk)  # last: a cut-short pass finds them again
    _remove_parked_queues(r, endpoint_id)
    metrics.forget(r, endpoint_id)  # a channel's series are named by its id, its endpoint's
    r.srem(keys.REMOVING_ENDPOINTS, endpoint_id)
    return awaited


def _remove_parked_queues(r: Redis, endpoint_id: str) -> None:
    """The queues held while the endpoint was disabled, with what they hold: no worker looks
    at a parked queue, and its index of deliveries names what they hold, not the queues."""
    parked = keys.endpoint_parked(endpoint_id)
    refs = sorted(r.smembers(parked))
    for start in range(0, len(refs), _REMOVAL_CHUNK):
        remove_queues(r, refs[start : start + _REMOVAL_CHUNK])
    r.delete(parked)


def remove_queues(r: Redis, refs: Sequence[str]) -> None:
    """Remove these delivery queues (`records.queue_ref`) with the deliveries they hold and
    those deliveries' index entries: their conversations go. The records go before their
    queues, so that a cut-short pass finds them again. An attempt under way records nothing
    (`attempt_record.lua` finds its claim or its record gone); a queue's entry on `sb:due`
    goes when it comes due and a worker finds the queue empty."""
    pipe = r.pipeline(transaction=False)
    for ref in refs:
        pipe.lrange(keys.fifo(*split_ref(ref)), 0, -1)
    held: dict[str, list[str]] = {}
    for ref, delivery_ids in zip(refs, pipe.execute(), strict=True):
        held.setdefault(split_ref(ref)[1], []).extend(delivery_ids)
    for endpoint_id, delivery_ids in held.items():
        for start in range(0, len(delivery_ids), _REMOVAL_CHUNK):
            chunk = delivery_ids[start : start + _REMOVAL_CHUNK]
            _remove_deliveries(r, chunk)
            pipe = r.pipeline(transaction=False)
            pipe.zrem(keys.endpoint_deliveries(endpoint_id), *chunk)
            pipe.zrem(keys.endpoint_dead(endpoint_id), *chunk)
            pipe.execute()
    pipe = r.pipeline(transaction=False)
    for ref in refs:
        conversation_key, endpoint_id = split_ref(ref)
        pipe.delete(keys.fifo(conversation_key, endpoint_id))
        pipe.delete(keys.fifo_lock(conversation_key, endpoint_id))
        pipe.srem(keys.endpoint_parked(endpoint_id), ref)
    pipe.execute()


def _remove_deliveries(r: Redis, delivery_ids: Sequence[str]) -> list[str]:
    """Remove these deliveries; returns those a conversation was waiting for the end of."""
    if not delivery_ids:
        return []
    pipe = r.pipeline(transaction=False)
    for delivery_id in delivery_ids:
        conversation_key = ids.conversation_of_delivery(delivery_id)
        pipe.hmget(keys.delivery(conversation_key, delivery_id), "notify", "status")
        pipe.delete(keys.delivery(conversation_key, delivery_id))
        pipe.delete(keys.delivery_attempts(conversation_key, delivery_id))
    pipe.zrem(keys.DELIVERIES, *delivery_ids)
    pipe.zrem(keys.DEAD, *delivery_ids)
    read = pipe.execute()[: 3 * len(delivery_ids) : 3]
    return [
        delivery_id
        for delivery_id, (notify, status) in zip(delivery_ids, read, strict=True)
        if notify == "1" and status not in ("delivered", "dead")
    ]


def resume_removals(r: Redis) -> None:
    """Finish the removals of endpoints that were cut short."""
    for endpoint_id in r.smembers(keys.REMOVING_ENDPOINTS):
        delete(r, endpoint_id)


def list_ids(r: Redis, offset: int, limit: int) -> tuple[Sequence[str], int]:
    pipe = r.pipeline(transaction=False)
    pipe.zrange(keys.ENDPOINTS, offset, offset + limit - 1)
    pipe.zcard(keys.ENDPOINTS)
    ids, total = pipe.execute()
    return ids, total


def all_ids(r: Redis) -> list[str]:
    """Every endpoint's id, oldest first."""
    return r.zrange(keys.ENDPOINTS, 0, -1)
