"""Replay: an operator sends a delivered or dead-lettered delivery again."""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from broker.core import clock, ids, keys, logs, scripts
from broker.core.connection import Pipeline, Redis, index_shards
from broker.core.errors import Conflict, NotFound
from broker.delivery import health
from broker.delivery.records import due_member, queue_ref

log = logging.getLogger(__name__)

#: A bulk replay queues this many deliveries again per few round trips.
_CHUNK = 200


class Outcome(enum.Enum):
    REPLAYED = "replayed"
    #: Waiting for its next attempt, which is made now.
    RETRIED_NOW = "retried now"
    #: Already on its way (or, replaying dead letters, no longer dead).
    UNDER_WAY = "under way"
    MISSING = "missing"
    EXPIRED = "expired"
    ENDPOINT_REMOVED = "endpoint removed"


@dataclass(frozen=True)
class _Found:
    delivery_id: str
    conversation_key: str
    endpoint_id: str
    expires_at: float


def replay(r: Redis, delivery_id: str, *, dead_only: bool = False) -> bool:
    """Send a delivered or dead-lettered delivery again, or make the next attempt of one
    waiting for it now; False if it is already under way. With `dead_only`, Conflict for a
    delivery that is not a dead letter."""
    return replay_one(r, delivery_id, dead_only=dead_only) is not Outcome.UNDER_WAY


def replay_one(r: Redis, delivery_id: str, *, dead_only: bool = False) -> Outcome:
    """`replay`, saying what was done: REPLAYED, RETRIED_NOW or UNDER_WAY."""
    outcome, found = _queue_again(r, [delivery_id], dead_only=dead_only)[0]
    if outcome is Outcome.MISSING or found is None:
        raise NotFound(f"no delivery {delivery_id!r}")
    if outcome is Outcome.EXPIRED:
        raise Conflict(
            f"delivery {delivery_id!r} expired at {clock.iso(found.expires_at)}: what waited "
            "for its answer has given up on it, so it is not sent again"
        )
    if outcome is Outcome.ENDPOINT_REMOVED:
        raise Conflict(
            f"delivery {delivery_id!r} cannot be sent again: its endpoint "
            f"{found.endpoint_id!r} was removed"
        )
    if outcome is Outcome.UNDER_WAY:
        if dead_only:
            raise Conflict(
                f"delivery {delivery_id!r} is not a dead letter (it was delivered, or is on its "
                "way): it is not sent again"
            )
        return outcome
    health.probe_soon(r, found.endpoint_id)
    return outcome


def replay_many(r: Redis, delivery_ids: Sequence[str]) -> int:
    """Replay several dead letters; returns how many were queued again. A delivery that is
    no longer dead (another replay sent it again: two bulk replays at once must not send
    it twice), whose record expired, whose time ran out, or whose endpoint was removed, is
    passed over."""
    delivery_ids = in_order_made(r, list(dict.fromkeys(delivery_ids)))
    replayed = 0
    endpoints: set[str] = set()
    for start in range(0, len(delivery_ids), _CHUNK):
        chunk = delivery_ids[start : start + _CHUNK]
        for outcome, found in _queue_again(r, chunk, dead_only=True):
            if outcome is Outcome.REPLAYED and found is not None:
                replayed += 1
                endpoints.add(found.endpoint_id)
    for endpoint_id in endpoints:  # once an endpoint, not once a delivery
        health.probe_soon(r, endpoint_id)
    return replayed


def in_order_made(r: Redis, delivery_ids: Sequence[str]) -> list[str]:
    """The deliveries in the order they were made, for their queues to take them back in
    their first order: dead letters come in the order they died, and one replayed alone
    may have died again after those made later. Those made at the same moment keep their
    order; those not found come first."""
    made: dict[str, float] = {}
    for start in range(0, len(delivery_ids), _CHUNK):
        chunk = delivery_ids[start : start + _CHUNK]
        pipe = r.pipeline(transaction=False)
        named = [(d, key) for d, key in _conversations_of(chunk) if key]
        for delivery_id, conversation_key in named:
            pipe.hget(keys.delivery(conversation_key, delivery_id), "createdAt")
        for (delivery_id, _), created_at in zip(named, pipe.execute(), strict=True):
            made[delivery_id] = float(created_at or 0)
    return sorted(delivery_ids, key=lambda delivery_id: made.get(delivery_id, 0.0))


def _queue_again(
    r: Redis, delivery_ids: Sequence[str], *, dead_only: bool
) -> list[tuple[Outcome, _Found | None]]:
    """Put these deliveries back on their queues, in a few round trips for all of them;
    each one's outcome (and what was read of it). The endpoints' circuits are the caller's to
    open for a probe."""
    found = _read(r, delivery_ids)
    live_endpoints = _existing_endpoints(r, {f.endpoint_id for f in found if f is not None})
    now = clock.now()
    outcomes: list[tuple[Outcome, _Found | None]] = []
    chosen: list[_Found] = []
    for item in found:
        if item is None:
            outcomes.append((Outcome.MISSING, None))
        elif item.expires_at and item.expires_at <= now:
            outcomes.append((Outcome.EXPIRED, item))
        elif item.endpoint_id not in live_endpoints:
            outcomes.append((Outcome.ENDPOINT_REMOVED, item))
        else:
            outcomes.append((Outcome.REPLAYED, item))
            chosen.append(item)
    if not chosen:
        return outcomes
    shards = index_shards(r)

    # The scheduler is told first (sb:due is not in the conversations' hash slots): should we
    # die right after, the queues are looked at anyway; a queue that holds nothing new is
    # simply let go again.
    def tell_scheduler(pipe: Pipeline) -> None:
        for item in chosen:
            ref = queue_ref(item.conversation_key, item.endpoint_id)
            pipe.zadd(keys.due(ref, shards), {due_member(ref, ids.random_hex(8)): now})

    def requeue(pipe: Pipeline) -> None:
        for item in chosen:
            script_keys = [
                keys.delivery(item.conversation_key, item.delivery_id),
                keys.fifo(item.conversation_key, item.endpoint_id),
                keys.delivery_attempts(item.conversation_key, item.delivery_id),
            ]
            only = "dead" if dead_only else ""
            scripts.add(pipe, "replay", script_keys, [item.delivery_id, only])

    answers = scripts.execute_in_order(r, tell_scheduler, requeue)[-len(chosen) :]
    said = {1: Outcome.REPLAYED, 2: Outcome.RETRIED_NOW, 0: Outcome.UNDER_WAY}
    verdicts = {
        item.delivery_id: said.get(answer, Outcome.MISSING)
        for item, answer in zip(chosen, answers, strict=True)
    }
    replayed = [item for item in chosen if verdicts[item.delivery_id] is Outcome.REPLAYED]
    if replayed:
        pipe = r.pipeline(transaction=False)
        for item in replayed:
            pipe.zrem(keys.DEAD, item.delivery_id)
            pipe.zrem(keys.endpoint_dead(item.endpoint_id), item.delivery_id)
        pipe.execute()
    for item in chosen:
        if verdicts[item.delivery_id] in (Outcome.REPLAYED, Outcome.RETRIED_NOW):
            logs.event(
                log,
                logging.INFO,
                f"delivery {verdicts[item.delivery_id].value}",
                deliveryId=item.delivery_id,
                endpointId=item.endpoint_id,
            )
    return [
        (verdicts.get(item.delivery_id, outcome) if item is not None else outcome, item)
        for outcome, item in outcomes
    ]


def _read(r: Redis, delivery_ids: Sequence[str]) -> list[_Found | None]:
    """Each delivery's endpoint and expiry, in one round trip; None for one that is not
    there (or whose id names no delivery)."""
    named = _conversations_of(delivery_ids)
    pipe = r.pipeline(transaction=False)
    for delivery_id, conversation_key in named:
        if conversation_key:
            record = keys.delivery(conversation_key, delivery_id)
            pipe.hmget(record, ["kind", "endpointId", "expiresAt"])
    answers = iter(pipe.execute())
    found: list[_Found | None] = []
    for delivery_id, conversation_key in named:
        kind, endpoint_id, expires_at = next(answers) if conversation_key else (None, "", None)
        # Without a kind, not a whole record (`records.is_whole`): missing.
        whole = _Found(delivery_id, conversation_key, endpoint_id, float(expires_at or 0))
        found.append(whole if kind else None)
    return found


def _conversations_of(delivery_ids: Sequence[str]) -> list[tuple[str, str]]:
    """Each id with the conversation whose delivery it names, "" for one that names none."""
    named: list[tuple[str, str]] = []
    for delivery_id in delivery_ids:
        try:
            named.append((delivery_id, ids.conversation_of_delivery(delivery_id)))
        except NotFound:
            named.append((delivery_id, ""))
    return named


def _existing_endpoints(r: Redis, endpoint_ids: set[str]) -> set[str]:
    ordered = sorted(endpoint_ids)
    pipe = r.pipeline(transaction=False)
    for endpoint_id in ordered:
        pipe.exists(keys.endpoint(endpoint_id))
    return {e for e, there in zip(ordered, pipe.execute(), strict=True) if there}
