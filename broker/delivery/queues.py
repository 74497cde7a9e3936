"""Working through one delivery queue: the head is attempted, and only when it is
delivered or dead-lettered does the next one go. Waiting work sits in Redis.

Every non-empty queue is, at any moment, in one of three places: on `sb:due` with the
time someone must look at it (a due retry, or the end of a worker's claim); in its
endpoint's parked set while the endpoint is disabled; or on its way in a task that
was sent while it was on `sb:due`. A worker that dies leaves its claim to expire on
`sb:due`, and the scheduler hands the queue to another.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial

from broker.core import clock, keys, scripts
from broker.core.connection import Pipeline, Redis
from broker.core.defaults import DELIVERIES_PER_CLAIM
from broker.core.errors import NotFound
from broker.core.locks import Lock
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from broker.delivery import endpoint_store, health, retry, signing
from broker.delivery.endpoint import Endpoint
from broker.delivery.http_client import AttemptResult, DeliveryClient
from broker.delivery.records import split_ref
from broker.delivery.retry import Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueRun:
    delivered: int = 0
    attempts: int = 0


def work_queue(
    r: Redis, settings: Settings, sender: TaskSender, client: DeliveryClient, ref: str
) -> QueueRun:
    """Attempt the ready head of one queue, and what follows it, until it must wait.

    `sender` wakes the bot turn of a conversation that waits for a delivery's end (an offload).
    """
    conversation_key, endpoint_id = split_ref(ref)
    lease = settings.claim_lease + settings.total_timeout
    lock = Lock(r, keys.fifo_lock(conversation_key, endpoint_id), lease)
    if not lock.acquire():
        return QueueRun()  # another worker holds it and looks again before letting go
    delivered = attempts = 0
    # When the scheduler must hand the queue out next. It is written only once the lock
    # is let go: a task sent at that time must find the queue free, not still held by
    # us on our way out (it would give up, and the queue would wait for a whole lease).
    wake_at: float | None = None
    try:
        try:
            endpoint = endpoint_store.load(r, endpoint_id)
        except NotFound:
            _dead_letter_all(r, settings, sender, ref)
            return QueueRun()
        lease = settings.claim_lease + endpoint.timeouts(settings)[1]
        for _ in range(DELIVERIES_PER_CLAIM):
            still_ours, _, head = scripts.execute(r, partial(_claim, lock, ref, lease))
            if not still_ours:
                # Our lease ran out and the queue may be another worker's now: leave it.
                return QueueRun(delivered, attempts)
            if head is None:
                r.zrem(keys.DUE, ref)
                if scripts.run(
                    r,
                    "queue_release",
                    [
                        keys.fifo(conversation_key, endpoint_id),
                        keys.fifo_lock(conversation_key, endpoint_id),
                    ],
                    [lock.token],
                ):
                    return QueueRun(delivered, attempts)
                continue
            pipe = r.pipeline(transaction=False)
            pipe.hgetall(keys.delivery(conversation_key, head))
            pipe.hget(keys.endpoint_health(endpoint_id), "state")
            # Read again each time, at no cost in round trips: a new URL applies at once.
            pipe.hgetall(keys.endpoint(endpoint_id))
            record, state, endpoint_raw = pipe.execute()
            if not endpoint_raw:
                _dead_letter_all(r, settings, sender, ref)
                return QueueRun(delivered, attempts)
            endpoint = Endpoint.from_redis(endpoint_raw)
            lease = settings.claim_lease + endpoint.timeouts(settings)[1]
            if not record:
                r.lpop(keys.fifo(conversation_key, endpoint_id))
                continue
            now = clock.now()
            expires_at = float(record.get("expiresAt") or 0)
            if expires_at and now >= expires_at:
                _dead_letter(
                    r, settings, sender, conversation_key, record, "expired before it was delivered"
                )
                continue
            not_before = float(record.get("nextAttemptAt") or 0)
            if not_before > now:
                wake_at = not_before
                return QueueRun(delivered, attempts)
            # Only a disabled endpoint or an open circuit needs the gate, which may also
            # make this attempt the circuit's probe.
            gate = (
                health.gate(r, settings, endpoint_id, now, lease)
                if state in ("disabled", "circuit_open")
                else health.Gate("go")
            )
            if gate.verdict == "disabled":
                if expires_at:
                    # Its answer is awaited now, not whenever an operator enables the endpoint.
                    _dead_letter(
                        r, settings, sender, conversation_key, record, "the endpoint is disabled"
                    )
                    continue
                park(r, ref)
                return QueueRun(delivered, attempts)
            if gate.verdict == "wait":
                wake_at = min(gate.until, expires_at) if expires_at else gate.until
                return QueueRun(delivered, attempts)
            verdict, retry_at = _attempt(
                r, settings, sender, client, endpoint, conversation_key, record
            )
            attempts += 1
            if verdict is Verdict.DELIVERED:
                delivered += 1
            elif verdict is Verdict.RETRY:
                wake_at = retry_at
                return QueueRun(delivered, attempts)
        # Out of this claim's share: the scheduler hands the queue on, after others.
        wake_at = clock.now()
        return QueueRun(delivered, attempts)
    finally:
        lock.release()
        if wake_at is not None:
            r.zadd(keys.DUE, {ref: wake_at})


def _claim(lock: Lock, ref: str, lease: float, pipe: Pipeline) -> None:
    """Renew our hold on a queue and read its head."""
    conversation_key, endpoint_id = split_ref(ref)
    lock.extend_on(pipe, lease)
    # Our claim: if this process dies, the scheduler hands the queue on after it.
    pipe.zadd(keys.DUE, {ref: clock.now() + lease})
    pipe.lindex(keys.fifo(conversation_key, endpoint_id), 0)


def _attempt(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    client: DeliveryClient,
    endpoint: Endpoint,
    conversation_key: str,
    record: dict[str, str],
) -> tuple[Verdict, float]:
    """Attempt one delivery and record it; returns the verdict and, for RETRY, when next."""
    delivery_id = record["id"]
    started = clock.now()
    timestamp = int(started)
    body = record["body"].encode()
    headers = {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(
            endpoint.signing_secrets(started), delivery_id, timestamp, body
        ),
    }
    connect_timeout, total_timeout = endpoint.timeouts(settings)
    result = client.post(
        endpoint.request_url(),
        body,
        headers,
        connect_timeout=connect_timeout,
        total_timeout=total_timeout,
    )
    now = clock.now()
    attempts_made = int(record.get("attemptCount") or 0) - int(record.get("attemptBase") or 0) + 1
    decision = retry.decide(
        status_code=result.status_code,
        attempts_made=attempts_made,
        schedule=endpoint.schedule(settings),
        jitter=settings.retry_jitter,
        retry_after=retry.parse_retry_after(result.retry_after, now),
        retry_after_cap=settings.retry_after_cap,
        now=now,
        deadline=float(record.get("expiresAt") or 0) or None,
    )
    # What the record gets, whether the delivery leaves its queue, and how long it is kept.
    fields: list[str] = []
    pop, ttl = False, 0.0
    if decision.verdict is Verdict.DELIVERED:
        fields = ["status", "delivered", "deliveredAt", repr(now)]
        pop, ttl = True, settings.log_retention
    elif decision.verdict is Verdict.RETRY:
        fields = ["nextAttemptAt", repr(now + decision.delay)]
    elif decision.verdict is Verdict.DEAD:
        fields = ["status", "dead", "deadAt", repr(now)]
        pop, ttl = True, settings.dead_retention
        log.warning(
            "delivery %s to %s is dead after %d attempts", delivery_id, endpoint.id, attempts_made
        )

    def record_all(pipe: Pipeline) -> None:
        if decision.verdict is Verdict.DEAD:
            # Listed first (sb:dead is not in the conversation's hash slot): should we die before
            # the record, the delivery is tried again and the listing skips it until it is dead.
            pipe.zadd(keys.DEAD, {delivery_id: int(now * 1000)})
        health.add_outcome(
            pipe,
            settings,
            endpoint.id,
            ok=result.ok,
            error=result.error or f"HTTP {result.status_code}",
            now=now,
        )
        if decision.verdict is Verdict.DISABLE:
            health.add_disabled(
                pipe, endpoint.id, f"the endpoint answered {result.status_code} Gone"
            )
        _add_attempt(
            pipe,
            settings,
            conversation_key,
            record,
            started,
            result,
            pop=pop,
            ttl=ttl,
            fields=fields,
        )

    _wake_if_told(sender, conversation_key, scripts.execute(r, record_all))
    return decision.verdict, now + decision.delay


def _add_attempt(
    pipe: Pipeline,
    settings: Settings,
    conversation_key: str,
    record: dict[str, str],
    started: float,
    result: AttemptResult,
    *,
    pop: bool,
    ttl: float,
    fields: list[str],
) -> None:
    """Queue the attempt's log entry and the delivery's new fields on a pipeline, last;
    `pop` takes the delivery off its queue. When the delivery's conversation waits for its end,
    the conversation gets a signal, and the script's answer is 2 if a bot turn must be woken."""
    attempt: dict[str, object] = {"at": clock.iso(started), "durationMs": result.duration_ms}
    if result.status_code is not None:
        attempt["statusCode"] = result.status_code
    if result.error:
        attempt["error"] = result.error
    if result.response:
        attempt["response"] = result.response
    delivery_id = record["id"]
    script_keys = [
        keys.delivery(conversation_key, delivery_id),
        keys.delivery_attempts(conversation_key, delivery_id),
        keys.fifo(conversation_key, record["endpointId"]),
    ]
    signal = ""
    if pop and record.get("notify") == "1":
        signal = _end_signal(record, result)
        script_keys += [
            keys.conversation_signals(conversation_key),
            keys.conversation_pending(conversation_key),
        ]
        # Listed first (sb:turns is not in the conversation's hash slot): should we die before
        # the wake-up, the scheduler runs the turn when this entry comes due.
        pipe.zadd(keys.TURNS, {conversation_key: clock.now() + settings.claim_lease}, nx=True)
    scripts.add(
        pipe,
        "attempt_record",
        script_keys,
        [
            delivery_id,
            json.dumps(attempt, ensure_ascii=False),
            "1" if pop else "0",
            int(ttl),
            signal,
            *fields,
        ],
    )


def _end_signal(record: dict[str, str], result: AttemptResult) -> str:
    """What the conversation is told when a delivery it waits for leaves its queue."""
    return json.dumps(
        {
            "kind": "delivery",
            "deliveryId": record["id"],
            "deliveryKind": record["kind"],
            "delivered": result.ok,
            "statusCode": result.status_code,
            "response": result.response,
            "error": result.error,
        },
        ensure_ascii=False,
    )


def _wake_if_told(sender: TaskSender, conversation_key: str, answers: list[object]) -> None:
    """Wake the conversation's bot turn if the attempt's record (the pipeline's last answer)
    says so."""
    if answers and answers[-1] == 2:
        sender.bot_turn(conversation_key)


def defer(r: Redis, refs: list[str], until: float) -> None:
    """Ask the scheduler to hand these queues out again by `until` (sooner than their claim
    would). A queue that was let go meanwhile, or is due sooner, is left as it is."""
    r.zadd(keys.DUE, dict.fromkeys(refs, until), xx=True, lt=True)


def park(r: Redis, ref: str) -> None:
    """Hold a queue while its endpoint is disabled; `health.enable` wakes it."""
    _, endpoint_id = split_ref(ref)
    r.zrem(keys.DUE, ref)
    r.sadd(keys.endpoint_parked(endpoint_id), ref)
    # An operator may have enabled the endpoint meanwhile, and found nothing parked.
    if r.hget(keys.endpoint_health(endpoint_id), "state") != "disabled":
        r.srem(keys.endpoint_parked(endpoint_id), ref)
        r.zadd(keys.DUE, {ref: clock.now()})


def _dead_letter_all(r: Redis, settings: Settings, sender: TaskSender, ref: str) -> None:
    """The endpoint was removed: its queue ends in the dead-letter list."""
    conversation_key, endpoint_id = split_ref(ref)
    while (delivery_id := r.lindex(keys.fifo(conversation_key, endpoint_id), 0)) is not None:
        record = r.hgetall(keys.delivery(conversation_key, delivery_id))
        if record:
            _dead_letter(r, settings, sender, conversation_key, record, "the endpoint was removed")
        else:
            r.lpop(keys.fifo(conversation_key, endpoint_id))
    r.zrem(keys.DUE, ref)


def _dead_letter(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    conversation_key: str,
    record: dict[str, str],
    error: str,
) -> None:
    """End the head of a queue in the dead-letter list without an attempt, saying why."""
    now = clock.now()

    def dead_letter(pipe: Pipeline) -> None:
        pipe.zadd(keys.DEAD, {record["id"]: int(now * 1000)})
        _add_attempt(
            pipe,
            settings,
            conversation_key,
            record,
            now,
            AttemptResult(None, 0, error=error),
            pop=True,
            ttl=settings.dead_retention,
            fields=["status", "dead", "deadAt", repr(now)],
        )

    log.warning("delivery %s is dead: %s", record["id"], error)
    _wake_if_told(sender, conversation_key, scripts.execute(r, dead_letter))
