"""Working through one delivery queue: the head is attempted, and only when it is
delivered or dead-lettered does the next one go. Waiting work sits in Redis.

Every non-empty queue is, at any moment, in one of three places: on `sb:due` with the
time someone must look at it (a due retry, or the end of a worker's claim); in its
endpoint's parked set while the endpoint is disabled; or on its way in a task that
was sent while it was on `sb:due`. A worker that dies leaves its claim to expire on
`sb:due`, and the scheduler hands the queue to another.
"""

from __future__ import annotations

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
from broker.delivery import attempt_log, endpoint_store, health, retry, signing
from broker.delivery.endpoint import Endpoint
from broker.delivery.http_client import AttemptResult, DeliveryClient
from broker.delivery.records import Delivery, split_ref
from broker.delivery.retry import Decision, Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueRun:
    delivered: int = 0
    attempts: int = 0


@dataclass(frozen=True)
class _Head:
    """The head of the queue as read under our claim, with its endpoint as it is now."""

    delivery: Delivery | None
    endpoint: Endpoint | None
    endpoint_state: str | None


def work_queue(
    r: Redis, settings: Settings, sender: TaskSender, client: DeliveryClient, ref: str
) -> QueueRun:
    """Attempt the ready head of one queue, and what follows it, until it must wait.

    `sender` wakes the bot turn of a conversation that waits for a delivery's end (an offload).
    """
    return _QueueWork(r, settings, sender, client, ref).run()


class _QueueWork:
    def __init__(
        self, r: Redis, settings: Settings, sender: TaskSender, client: DeliveryClient, ref: str
    ) -> None:
        self.r, self.settings, self.sender, self.client, self.ref = r, settings, sender, client, ref
        self.conversation_key, self.endpoint_id = split_ref(ref)
        self.lease = settings.claim_lease + settings.total_timeout
        self.lock = Lock(r, keys.fifo_lock(self.conversation_key, self.endpoint_id), self.lease)
        self.delivered = self.attempts = 0
        # When the scheduler must hand the queue out next. It is written only once the lock
        # is let go: a task sent at that time must find the queue free, not still held by
        # us on our way out (it would give up, and the queue would wait for a whole lease).
        self.wake_at: float | None = None

    def run(self) -> QueueRun:
        if not self.lock.acquire():
            return QueueRun()  # another worker holds it and looks again before letting go
        try:
            if self._endpoint_is_gone():
                return QueueRun()
            for _ in range(DELIVERIES_PER_CLAIM):
                if not self._step():
                    break
            else:
                self.wake_at = clock.now()  # out of this claim's share: others go first
            return QueueRun(self.delivered, self.attempts)
        finally:
            self.lock.release()
            if self.wake_at is not None:
                self.r.zadd(keys.DUE, {self.ref: self.wake_at})

    def _endpoint_is_gone(self) -> bool:
        try:
            endpoint = endpoint_store.load(self.r, self.endpoint_id)
        except NotFound:
            self._dead_letter_all()
            return True
        self.lease = self.settings.claim_lease + endpoint.timeouts(self.settings)[1]
        return False

    def _step(self) -> bool:
        """Deal with the head of the queue; False when the queue is done with for now."""
        head_id = self._claim()
        if head_id is None:
            return False
        if head_id == "":
            return self._release_if_empty()
        head = self._read(head_id)
        if head.endpoint is None:
            self._dead_letter_all()
            return False
        self.lease = self.settings.claim_lease + head.endpoint.timeouts(self.settings)[1]
        if head.delivery is None:
            self.r.lpop(keys.fifo(self.conversation_key, self.endpoint_id))  # its record expired
            return True
        return self._deliver(head.delivery, head.endpoint, head.endpoint_state)

    def _claim(self) -> str | None:
        """Renew our hold and read the head's id: None when the hold was lost (the queue
        may be another worker's now), "" when the queue is empty."""
        still_ours, _, head = scripts.execute(
            self.r, partial(_renew_claim, self.lock, self.ref, self.lease)
        )
        if not still_ours:
            return None
        return head or ""

    def _release_if_empty(self) -> bool:
        """Let go of an empty queue; True when a delivery came in meanwhile."""
        self.r.zrem(keys.DUE, self.ref)
        released = scripts.run(
            self.r,
            "queue_release",
            [
                keys.fifo(self.conversation_key, self.endpoint_id),
                keys.fifo_lock(self.conversation_key, self.endpoint_id),
            ],
            [self.lock.token],
        )
        return not released

    def _read(self, delivery_id: str) -> _Head:
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(keys.delivery(self.conversation_key, delivery_id))
        health.add_state_read(pipe, self.endpoint_id)
        # Read again each time, at no cost in round trips: a new URL applies at once.
        pipe.hgetall(keys.endpoint(self.endpoint_id))
        record, state, endpoint = pipe.execute()
        return _Head(
            Delivery.from_redis(record) if record else None,
            Endpoint.from_redis(endpoint) if endpoint else None,
            state,
        )

    def _deliver(self, delivery: Delivery, endpoint: Endpoint, endpoint_state: str | None) -> bool:
        """Attempt the head if it is due and its endpoint lets us; False when it must wait."""
        now = clock.now()
        if delivery.expires_at and now >= delivery.expires_at:
            self._dead_letter(delivery, "expired before it was delivered")
            return True
        if delivery.next_attempt_at > now:
            self.wake_at = delivery.next_attempt_at
            return False
        # Only a disabled endpoint or an open circuit needs the gate, which may also make
        # this attempt the circuit's probe.
        gate = (
            health.gate(self.r, self.settings, self.endpoint_id, now, self.lease)
            if endpoint_state in ("disabled", "circuit_open")
            else health.Gate("go")
        )
        if gate.verdict == "disabled":
            if delivery.expires_at:
                # Its answer is awaited now, not whenever an operator enables the endpoint.
                self._dead_letter(delivery, "the endpoint is disabled")
                return True
            park(self.r, self.ref)
            return False
        if gate.verdict == "wait":
            until = gate.until
            self.wake_at = min(until, delivery.expires_at) if delivery.expires_at else until
            return False
        verdict, next_at = _attempt(
            self.r,
            self.settings,
            self.sender,
            self.client,
            endpoint,
            self.conversation_key,
            delivery,
        )
        self.attempts += 1
        if verdict is Verdict.DELIVERED:
            self.delivered += 1
        if verdict is Verdict.RETRY:
            self.wake_at = next_at
            return False
        return True

    def _dead_letter(self, delivery: Delivery, error: str) -> None:
        attempt_log.dead_letter(
            self.r, self.settings, self.sender, self.conversation_key, delivery, error
        )

    def _dead_letter_all(self) -> None:
        """The endpoint was removed: its queue ends in the dead-letter list."""
        fifo = keys.fifo(self.conversation_key, self.endpoint_id)
        while (delivery_id := self.r.lindex(fifo, 0)) is not None:
            record = self.r.hgetall(keys.delivery(self.conversation_key, delivery_id))
            if record:
                self._dead_letter(Delivery.from_redis(record), "the endpoint was removed")
            else:
                self.r.lpop(fifo)
        self.r.zrem(keys.DUE, self.ref)


def _renew_claim(lock: Lock, ref: str, lease: float, pipe: Pipeline) -> None:
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
    delivery: Delivery,
) -> tuple[Verdict, float]:
    """Attempt one delivery and record it; returns the verdict and, for RETRY, when next."""
    started = clock.now()
    result = _send(settings, client, endpoint, delivery, started)
    now = clock.now()
    decision = _decide(settings, endpoint, delivery, result, now)
    _record(r, settings, sender, conversation_key, delivery, endpoint, started, result, decision)
    return decision.verdict, now + decision.delay


def _send(
    settings: Settings,
    client: DeliveryClient,
    endpoint: Endpoint,
    delivery: Delivery,
    at: float,
) -> AttemptResult:
    """POST the delivery, signed (Standard Webhooks)."""
    timestamp = int(at)
    body = delivery.body.encode()
    headers = {
        "webhook-id": delivery.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(
            endpoint.signing_secrets(at), delivery.id, timestamp, body
        ),
    }
    connect_timeout, total_timeout = endpoint.timeouts(settings)
    return client.post(
        endpoint.request_url(),
        body,
        headers,
        connect_timeout=connect_timeout,
        total_timeout=total_timeout,
    )


def _decide(
    settings: Settings, endpoint: Endpoint, delivery: Delivery, result: AttemptResult, now: float
) -> Decision:
    return retry.decide(
        status_code=result.status_code,
        attempts_made=delivery.attempts_since_replay + 1,
        schedule=endpoint.schedule(settings),
        jitter=settings.retry_jitter,
        retry_after=retry.parse_retry_after(result.retry_after, now),
        retry_after_cap=settings.retry_after_cap,
        now=now,
        deadline=delivery.expires_at or None,
    )


def _record(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    conversation_key: str,
    delivery: Delivery,
    endpoint: Endpoint,
    started: float,
    result: AttemptResult,
    decision: Decision,
) -> None:
    """Record the attempt, its delivery's fate and its endpoint's health, in one round trip."""
    now = clock.now()
    verdict = decision.verdict
    if verdict is Verdict.DELIVERED:
        ending = attempt_log.delivered(settings, now)
    elif verdict is Verdict.DEAD:
        ending = attempt_log.dead(settings, now)
        log.warning(
            "delivery %s to %s is dead after %d attempts",
            delivery.id,
            endpoint.id,
            delivery.attempts_since_replay + 1,
        )
    elif verdict is Verdict.RETRY:
        ending = attempt_log.retry_at(now + decision.delay)
    else:
        ending = attempt_log.Ending([])  # DISABLE: it waits, parked, for the endpoint

    def build(pipe: Pipeline) -> None:
        if verdict is Verdict.DEAD:
            # Listed first (sb:dead is not in the conversation's hash slot): should we die
            # before the record, the delivery is tried again and the listing skips it.
            pipe.zadd(keys.DEAD, {delivery.id: clock.ms(now)})
        health.add_outcome(
            pipe,
            settings,
            endpoint.id,
            ok=result.ok,
            error=attempt_log.error_text(result) or "",
            now=now,
        )
        if verdict is Verdict.DISABLE:
            health.add_disabled(
                pipe, endpoint.id, f"the endpoint answered {result.status_code} Gone"
            )
        attempt_log.add(pipe, settings, conversation_key, delivery, started, result, ending)

    attempt_log.wake_if_told(sender, conversation_key, scripts.execute(r, build))
    attempt_log.report(delivery, result, ending, now)


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
    if not health.is_disabled(r, endpoint_id):
        r.srem(keys.endpoint_parked(endpoint_id), ref)
        r.zadd(keys.DUE, {ref: clock.now()})
