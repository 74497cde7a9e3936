"""Recording what became of a delivery, through `attempt_record.lua`: its attempt log entry,
its new fields, its leaving the queue, the signal its conversation waits for (an offload's
answer), and what comes next on the queue, all in one script that records nothing when
the queue is no longer ours."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal

from broker.core import clock, escapes, keys, logs, metrics
from broker.core.autopipe import AutoPipeline
from broker.core.settings import Settings
from broker.delivery import delivery_index
from broker.delivery.http_client import AttemptResult
from broker.delivery.records import Attempt, Delivery

log = logging.getLogger(__name__)

#: How much of a failed answer's body its error text quotes (characters).
_ERROR_EXCERPT = 200

Fate = Literal["leaves", "waits"]


@dataclass(frozen=True)
class Ending:
    """What an attempt does to its delivery beyond the log entry."""

    #: "leaves": delivered or dead, off the queue; "waits": tried again later.
    fate: Fate
    #: Field, value, ... to set on the record.
    fields: list[str]
    #: How long the record is kept (0: for ever).
    ttl: float = 0.0
    #: It ends in the dead-letter list.
    dead: bool = False


def delivered(settings: Settings, at: float) -> Ending:
    return Ending("leaves", Delivery.delivered_fields(at), settings.log_retention)


def dead(settings: Settings, at: float) -> Ending:
    return Ending("leaves", Delivery.dead_fields(at), settings.dead_retention, dead=True)


def retry_at(at: float) -> Ending:
    return Ending("waits", Delivery.retry_fields(at))


def held() -> Ending:
    """Tried again once its endpoint lets it (a 410 disabled the endpoint)."""
    return Ending("waits", [])


@dataclass(frozen=True)
class Recorded:
    #: False when the queue was no longer ours: nothing was recorded.
    ours: bool
    #: The conversation's bot turn must be woken (the end of an offload was signalled).
    wake: bool = False
    #: The queue's next delivery, still ours; None when the queue was let go.
    next: Delivery | None = None


def error_text(result: AttemptResult) -> str | None:
    """Why an attempt failed, in words: the client's reason (a timeout, a refused
    connection, a TLS failure, an unsafe address), or the status and first bytes of an
    answer that is not 2xx, on one line and without control characters (it is shown in
    logs and terminals). None for a success."""
    if result.error or result.ok:
        return result.error
    excerpt = " ".join((result.response or "").split())
    if len(excerpt) > _ERROR_EXCERPT:
        excerpt = excerpt[: _ERROR_EXCERPT - 3] + "..."
    excerpt = escapes.one_line(excerpt)
    return f"HTTP {result.status_code}" + (f": {excerpt}" if excerpt else "")


def report(delivery: Delivery, result: AttemptResult, ending: Ending, at: float) -> None:
    """Count a recorded attempt, and the delivery's end if it is one, for /metrics; and log
    it, one line with its ids."""
    kind = endpoint_kind(delivery)
    outcome = "success" if result.ok else "failure" if result.sent else "not_sent"
    metrics.count(metrics.DELIVERY_ATTEMPTS, kind, outcome)
    if result.sent:
        metrics.observe(metrics.ATTEMPT_DURATION, result.duration_ms / 1000, kind)
    ended = None
    if ending.fate == "leaves":
        ended = "delivered" if result.ok else "dead"
        metrics.count(metrics.DELIVERIES, kind, ended)
        if result.ok and not delivery.attempt_base:
            # A replay's latency would be the operator's, not the pipeline's.
            metrics.observe(metrics.DELIVERY_LATENCY, at - delivery.received_at, kind)
    logs.event(
        log,
        logging.INFO if result.ok else logging.WARNING,
        f"delivery attempt: {outcome.replace('_', ' ')}" + (f", {ended}" if ended else ""),
        deliveryId=delivery.id,
        endpointId=delivery.endpoint_id,
        sessionId=delivery.conversation_id,
        botId=delivery.bot_id,
        statusCode=result.status_code,
        durationMs=result.duration_ms,
        attempt=delivery.attempt_count + 1,
        error=error_text(result),
    )


def endpoint_kind(delivery: Delivery) -> str:
    """The kind of endpoint a delivery goes to: channel messages go to a channel's webhook,
    `messages` and `offload` events to the bot's offloading webhook."""
    return "channel" if delivery.kind == "message" else "offloading"


async def record(
    redis: AutoPipeline,
    settings: Settings,
    conversation_key: str,
    delivery: Delivery,
    token: str,
    started: float,
    result: AttemptResult,
    ending: Ending,
    *,
    lease_ms: int,
) -> Recorded:
    """Record the attempt, only while the queue's claim holds `token`; the claim is then
    renewed for `lease_ms` when the queue goes on to its next delivery."""
    attempt = Attempt(
        started, result.duration_ms, result.status_code, error_text(result), result.response
    )
    script_keys = [
        keys.delivery(conversation_key, delivery.id),
        keys.delivery_attempts(conversation_key, delivery.id),
        keys.fifo(conversation_key, delivery.endpoint_id),
        keys.fifo_lock(conversation_key, delivery.endpoint_id),
    ]
    if ending.ttl:
        # Listed first (it is not in the conversation's hash slot): should we die before the
        # record, or the queue not be ours, the entry finds the record without an expiry
        # and goes.
        expiring = redis.call(
            "ZADD",
            keys.EXPIRING,
            clock.ms(clock.now() + int(ending.ttl)),
            delivery_index.expiring_entry(delivery.id, delivery.endpoint_id),
        )
        if redis.on_cluster:
            await expiring
    signal = ""
    if ending.fate == "leaves" and delivery.notify:
        signal = _end_signal(delivery, result)
        script_keys += [
            keys.conversation_signals(conversation_key),
            keys.conversation_pending(conversation_key),
        ]
        # Listed first (sb:turns is not in the conversation's hash slot): should we die
        # before the wake-up, the scheduler runs the turn when this entry comes due. A
        # cluster's nodes take their parts of a pipeline each on its own: wait for it there.
        listed = redis.call(
            "ZADD",
            keys.turns(conversation_key, redis.index_shards),
            "NX",
            clock.now() + settings.claim_lease,
            conversation_key,
        )
        if redis.on_cluster:
            await listed
    answer = await redis.script(
        "attempt_record",
        script_keys,
        [
            delivery.id,
            attempt.to_json(),
            ending.fate,
            int(ending.ttl),
            signal,
            token,
            lease_ms,
            keys.delivery_prefix(conversation_key),
            *ending.fields,
        ],
    )
    if answer[0] == -1:
        return Recorded(ours=False)
    following = None
    if answer[0] == 1:
        fields = answer[3:]
        following = Delivery.from_redis(dict(zip(fields[::2], fields[1::2], strict=True)))
    return Recorded(True, bool(answer[1]), following)


def _end_signal(delivery: Delivery, result: AttemptResult) -> str:
    """What the conversation is told when a delivery it waits for leaves its queue."""
    return json.dumps(
        {
            "kind": "delivery",
            "deliveryId": delivery.id,
            "deliveryKind": delivery.kind,
            "delivered": result.ok,
            "statusCode": result.status_code,
            # Whole, not the log's excerpt: an offload's answer is read from it.
            "response": result.body.decode("utf-8", "replace") or result.response,
            "error": result.error,
        },
        ensure_ascii=False,
    )
