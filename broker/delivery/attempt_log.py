"""Recording what became of a delivery: its attempt log entry, its new fields, its leaving
the queue, the dead-letter index, and the signal its conversation waits for (an offload's
answer), all through `attempt_record.lua`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from broker.core import clock, keys, logs, metrics, scripts
from broker.core.connection import Pipeline, Redis
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from broker.delivery.http_client import AttemptResult
from broker.delivery.records import Attempt, Delivery

log = logging.getLogger(__name__)

#: `attempt_record.lua`'s answer when the conversation's bot turn must be woken.
_WAKE = 2
#: How much of a failed answer's body its error text quotes (characters).
_ERROR_EXCERPT = 200


@dataclass(frozen=True)
class Ending:
    """What an attempt does to its delivery beyond the log entry."""

    #: Field, value, ... to set on the record.
    fields: list[str]
    #: Whether the delivery leaves its queue (delivered or dead), and how long it is kept.
    leaves: bool = False
    ttl: float = 0.0


def delivered(settings: Settings, at: float) -> Ending:
    return Ending(Delivery.delivered_fields(at), True, settings.log_retention)


def retry_at(at: float) -> Ending:
    return Ending(Delivery.retry_fields(at))


def dead(settings: Settings, at: float) -> Ending:
    return Ending(Delivery.dead_fields(at), True, settings.dead_retention)


def error_text(result: AttemptResult) -> str | None:
    """Why an attempt failed, in words: the client's reason (a timeout, a refused
    connection, a TLS failure, an unsafe address), or the status and first bytes of an
    answer that is not 2xx. None for a success."""
    if result.error or result.ok:
        return result.error
    excerpt = " ".join((result.response or "").split())
    if len(excerpt) > _ERROR_EXCERPT:
        excerpt = excerpt[: _ERROR_EXCERPT - 3] + "..."
    return f"HTTP {result.status_code}" + (f": {excerpt}" if excerpt else "")


def report(delivery: Delivery, result: AttemptResult, ending: Ending, at: float) -> None:
    """Count a recorded attempt, and the delivery's end if it is one, for /metrics; and log
    it, one line with its ids."""
    kind = endpoint_kind(delivery)
    outcome = "success" if result.ok else "failure"
    metrics.count(metrics.DELIVERY_ATTEMPTS, kind, outcome)
    metrics.observe(metrics.ATTEMPT_DURATION, result.duration_ms / 1000, kind)
    ended = None
    if ending.leaves:
        ended = "delivered" if result.ok else "dead"
        metrics.count(metrics.DELIVERIES, kind, ended)
        if result.ok and not delivery.attempt_base:
            # A replay's latency would be the operator's, not the pipeline's.
            metrics.observe(metrics.DELIVERY_LATENCY, at - delivery.received_at, kind)
    logs.event(
        log,
        logging.INFO if result.ok else logging.WARNING,
        f"delivery attempt: {outcome}" + (f", {ended}" if ended else ""),
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


def add(
    pipe: Pipeline,
    settings: Settings,
    conversation_key: str,
    delivery: Delivery,
    started: float,
    result: AttemptResult,
    ending: Ending,
) -> None:
    """Queue the attempt's record on a pipeline, as its last command. When the delivery's
    conversation waits for its end, the conversation gets a signal, and the script answers
    `_WAKE` if a bot turn must be woken (see `wake_if_told`)."""
    attempt = Attempt(
        started, result.duration_ms, result.status_code, error_text(result), result.response
    )
    script_keys = [
        keys.delivery(conversation_key, delivery.id),
        keys.delivery_attempts(conversation_key, delivery.id),
        keys.fifo(conversation_key, delivery.endpoint_id),
    ]
    signal = ""
    if ending.leaves and delivery.notify:
        signal = _end_signal(delivery, result)
        script_keys += [
            keys.conversation_signals(conversation_key),
            keys.conversation_pending(conversation_key),
        ]
        # Listed first (sb:turns is not in the conversation's hash slot): should we die
        # before the wake-up, the scheduler runs the turn when this entry comes due.
        pipe.zadd(keys.TURNS, {conversation_key: clock.now() + settings.claim_lease}, nx=True)
    scripts.add(
        pipe,
        "attempt_record",
        script_keys,
        [
            delivery.id,
            attempt.to_json(),
            "1" if ending.leaves else "0",
            int(ending.ttl),
            signal,
            *ending.fields,
        ],
    )


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


def wake_if_told(sender: TaskSender, conversation_key: str, answers: list[object]) -> None:
    """Wake the conversation's bot turn if the attempt's record (the pipeline's last answer)
    says so."""
    if answers and answers[-1] == _WAKE:
        sender.bot_turn(conversation_key)


def dead_letter(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    conversation_key: str,
    delivery: Delivery,
    error: str,
) -> None:
    """End the head of a queue in the dead-letter list without an attempt, saying why."""
    now = clock.now()
    result = AttemptResult(None, 0, error=error)
    ending = dead(settings, now)

    def build(pipe: Pipeline) -> None:
        # Listed first (sb:dead is not in the conversation's hash slot): should we die
        # before the record, the listing skips it until it is dead.
        pipe.zadd(keys.DEAD, {delivery.id: clock.ms(now)})
        add(pipe, settings, conversation_key, delivery, now, result, ending)

    wake_if_told(sender, conversation_key, scripts.execute(r, build))
    report(delivery, result, ending, now)
