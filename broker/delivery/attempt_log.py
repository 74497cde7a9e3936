"""Recording what became of a delivery, through `attempt_record.lua`: its attempt log entry,
its new fields, its leaving the queue, the signal its conversation waits for (an offload's
answer), and what comes next on the queue, all in one script that records nothing when
the queue is no longer ours."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from broker.core import clock, keys
from broker.core.autopipe import AutoPipeline
from broker.core.settings import Settings
from broker.delivery.http_client import AttemptResult
from broker.delivery.records import Attempt, Delivery

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


async def record(
    redis: AutoPipeline,
    settings: Settings,
    conversation_key: str,
    delivery: Delivery,
    token: str,
    started: float,
    result: AttemptResult,
    ending: Ending,
) -> Recorded:
    attempt = Attempt(
        started, result.duration_ms, result.status_code, result.error, result.response
    )
    script_keys = [
        keys.delivery(conversation_key, delivery.id),
        keys.delivery_attempts(conversation_key, delivery.id),
        keys.fifo(conversation_key, delivery.endpoint_id),
        keys.fifo_lock(conversation_key, delivery.endpoint_id),
    ]
    signal = ""
    if ending.fate == "leaves" and delivery.notify:
        signal = _end_signal(delivery, result)
        script_keys += [
            keys.conversation_signals(conversation_key),
            keys.conversation_pending(conversation_key),
        ]
        # Listed first (sb:turns is not in the conversation's hash slot): should we die
        # before the wake-up, the scheduler runs the turn when this entry comes due.
        redis.call("ZADD", keys.TURNS, "NX", clock.now() + settings.claim_lease, conversation_key)
    lease_ms = clock.ms(settings.claim_lease + settings.total_timeout)
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
            "response": result.response,
            "error": result.error,
        },
        ensure_ascii=False,
    )
