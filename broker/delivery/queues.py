"""Working through one delivery queue: the head is attempted, and only when it is
delivered or dead-lettered does the next one go. Waiting work sits in Redis.

Every non-empty queue is, at any moment, on `sb:due` with the time someone must look at
it (a due retry, or the end of a worker's claim), or in its endpoint's parked set while
the endpoint is disabled. A worker holds a queue with a claim token and its entry on
`sb:due` is named by that token (`records.due_member`): letting go, it moves or removes
that entry and no other. A worker that dies leaves its claim to expire on `sb:due`, and
the scheduler hands the queue to another under a new claim.

Queues are worked on the worker's event loop, many at once, their Redis commands sent
together (`broker.core.autopipe`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from broker.core import clock, keys
from broker.core.autopipe import AutoPipeline
from broker.core.defaults import DELIVERIES_PER_CLAIM
from broker.core.settings import Settings
from broker.core.slots import Slots
from broker.delivery import attempt_log, health, retry, signing
from broker.delivery.attempt_log import Ending
from broker.delivery.bookkeeping import Bookkeeping
from broker.delivery.endpoint import Endpoint, delivery_lease
from broker.delivery.endpoint_cache import EndpointCache
from broker.delivery.http_client import AttemptResult, HttpClient
from broker.delivery.records import Delivery, due_member, split_ref
from broker.delivery.retry import Decision, Verdict

log = logging.getLogger(__name__)


@dataclass
class Deliverer:
    """What working queues needs: one per worker process, on its event loop."""

    settings: Settings
    redis: AutoPipeline
    client: HttpClient
    endpoints: EndpointCache
    book: Bookkeeping
    #: Wakes a conversation's bot turn (the end of an offload was signalled to it).
    wake_turn: Callable[[str], Awaitable[object]]
    #: The worker is stopping: queues are handed back rather than worked.
    draining: bool = False
    _slots: dict[str, Slots] = field(default_factory=dict)
    _all_slots: Slots | None = None

    def slots(self, endpoint_id: str) -> Slots:
        """At most `endpoint_concurrency` queues of one endpoint are worked at once, so an
        endpoint that hangs leaves the others room."""
        if endpoint_id not in self._slots:
            self._slots[endpoint_id] = Slots(self.settings.endpoint_concurrency)
        return self._slots[endpoint_id]

    def all_slots(self) -> Slots:
        """At most `delivery_concurrency` queues are worked at once in all."""
        if self._all_slots is None:
            self._all_slots = Slots(self.settings.delivery_concurrency)
        return self._all_slots


@dataclass(frozen=True)
class QueueRun:
    delivered: int = 0
    attempts: int = 0


async def work_queue(
    d: Deliverer, ref: str, token: str, head: Delivery | None = None, claimed_at: float = 0.0
) -> QueueRun:
    """Attempt the ready head of one queue, and what follows it, until it must wait.

    A queue a bot turn claimed comes with its `head` and when it was handed over
    (`time.monotonic()`); any other is claimed here with `token` first, and looked at
    again later if another worker holds it.
    """
    conversation_key, endpoint_id = split_ref(ref)
    work = _QueueWork(d, ref, conversation_key, endpoint_id, token)
    async with d.slots(endpoint_id), d.all_slots():
        if d.draining:
            await work.wait(clock.now())  # another worker's, at the scheduler's next pass
            return work.run
        if head is None:
            head = await work.claim()
        elif not work.surely_ours(claimed_at) and not await work.still_ours():
            return work.run  # held too long behind the endpoint's other queues
        delivery = head
        for _ in range(DELIVERIES_PER_CLAIM):
            if delivery is None:
                return work.run
            if d.draining:
                break
            delivery = await work.deliver(delivery)
        if delivery is not None:
            # Out of this claim's share, or the worker stops: the queue goes back to the
            # scheduler, due now.
            await work.wait(clock.now())
        return work.run


async def hand_back(d: Deliverer, ref: str, token: str) -> None:
    """Let go of a queue held with `token` and make it due now, so that the scheduler hands
    it out at its next pass: after Redis failed under its worker, the claim would otherwise
    hold it until it runs out. Another claim's lock is left alone; an entry on `sb:due`
    for a queue that someone else has, or that holds nothing, costs the scheduler a look."""
    work = _QueueWork(d, ref, *split_ref(ref), token)
    await work.release()
    await d.redis.call("ZADD", keys.due(ref, d.redis.index_shards), clock.now(), work.member)


class _QueueWork:
    def __init__(
        self, d: Deliverer, ref: str, conversation_key: str, endpoint_id: str, token: str
    ) -> None:
        self.d, self.ref, self.token = d, ref, token
        self.member = due_member(ref, token)
        self.conversation_key, self.endpoint_id = conversation_key, endpoint_id
        self.fifo = keys.fifo(conversation_key, endpoint_id)
        self.lock = keys.fifo_lock(conversation_key, endpoint_id)
        self.lease_ms = clock.ms(delivery_lease(d.settings))
        self.run = QueueRun()

    async def claim(self) -> Delivery | None:
        """The queue's head, held with our token; None when it is empty (the entry goes) or
        another worker has it (the entry waits until that claim ends)."""
        d = self.d
        answer = await d.redis.script(
            "queue_claim",
            [self.fifo, self.lock],
            [self.token, self.lease_ms, keys.delivery_prefix(self.conversation_key)],
        )
        if answer[0] == -1:
            d.book.due(self.member, clock.now() + max(int(answer[1]), 0) / 1000)
            return None
        if answer[0] == 0:
            d.book.done(self.member)
            return None
        fields = answer[2:]
        return Delivery.from_redis(dict(zip(fields[::2], fields[1::2], strict=True)))

    def surely_ours(self, claimed_at: float) -> bool:
        """A claim handed over this recently cannot have run out: a quarter of its lease
        leaves room for however late the hand-over's clock was read."""
        return time.monotonic() - claimed_at < self.lease_ms / 4000

    async def still_ours(self) -> bool:
        return bool(
            await self.d.redis.script("lock_extend", [self.lock], [self.token, self.lease_ms])
        )

    async def release(self) -> None:
        await self.d.redis.script("lock_release", [self.lock], [self.token])

    async def deliver(self, delivery: Delivery) -> Delivery | None:
        """Deal with the head; returns the next delivery, or None when the queue waits, is
        let go, or is no longer ours."""
        endpoint, state = await self.d.endpoints.get(self.endpoint_id)
        if endpoint is None:
            return await self._dead_letter(delivery, "the endpoint was removed")
        now = clock.now()
        if delivery.expires_at and now >= delivery.expires_at:
            return await self._dead_letter(delivery, _expired(delivery))
        if delivery.next_attempt_at > now:
            await self.wait(delivery.next_attempt_at)
            return None
        if state in ("disabled", "circuit_open"):
            return await self._through_gate(endpoint, delivery, now)
        return await self._attempt(endpoint, delivery)

    async def _through_gate(
        self, endpoint: Endpoint, delivery: Delivery, now: float
    ) -> Delivery | None:
        """The endpoint is disabled or its circuit open: the head goes out as its gate says
        (`deliver`'s answer)."""
        d = self.d
        # The gate may make this attempt the circuit's probe.
        call = health.gate_call(d.settings, self.endpoint_id, now, endpoint.claim_lease(d.settings))
        gate = health.read_gate(await d.redis.script("endpoint_gate", *call))
        if gate.verdict == "go":
            return await self._attempt(endpoint, delivery)
        if gate.verdict == "disabled":
            if delivery.expires_at:
                # Its answer is awaited now, not whenever an operator enables it.
                return await self._dead_letter(delivery, "the endpoint is disabled")
            await self._park()
            return None
        if gate.verdict == "probing":
            # The probe's outcome is moments away: wait for it without a count.
            await self.wait(gate.until)
            return None
        # "wait": the circuit is open, and this attempt is not its probe.
        if retry.is_last(delivery.attempts_since_replay, endpoint.schedule(d.settings)):
            # Its last attempt goes out, open circuit or not: no delivery is dead-lettered
            # without one request to its endpoint.
            return await self._attempt(endpoint, delivery)
        if delivery.retry_now:
            # An operator asked for this attempt: it waits for the circuit, uncounted.
            await self.wait(gate.until)
            return None
        return await self._held_by_circuit(endpoint, delivery, gate.until)

    async def _held_by_circuit(
        self, endpoint: Endpoint, delivery: Delivery, until: float
    ) -> Delivery | None:
        """The endpoint's circuit is open and this attempt is not its probe: it is used up
        without a request, and the delivery goes on by its schedule, to its dead letter at
        the end, as if it had failed. Waiting for the circuit without a count, a backlog
        behind a probe every few minutes would outlive its schedule by days."""
        now = clock.now()
        result = AttemptResult(
            None,
            0,
            error=f"not sent: the endpoint's circuit breaker is open until {clock.iso(until)}",
            sent=False,
        )
        return await self._conclude(endpoint, delivery, now, result, now)

    async def _attempt(self, endpoint: Endpoint, delivery: Delivery) -> Delivery | None:
        d = self.d
        if not await self._claimed_for(endpoint):
            return None
        started = clock.now()
        result = await _send(d, endpoint, delivery, started)
        now = clock.now()
        self.run = QueueRun(self.run.delivered + result.ok, self.run.attempts + 1)
        d.book.outcome(self.endpoint_id, now, result.ok, attempt_log.error_text(result) or "")
        return await self._conclude(endpoint, delivery, started, result, now)

    async def _claimed_for(self, endpoint: Endpoint) -> bool:
        """The claim lasts as long as an attempt to `endpoint` may take: an endpoint's own time
        limit can be longer than the default one claims are made for, and an attempt that
        outlived its claim would be made again meanwhile by whoever claimed the queue next.
        False when the claim ran out already."""
        lease_ms = clock.ms(endpoint.claim_lease(self.d.settings))
        if lease_ms <= self.lease_ms:
            return True
        self.lease_ms = lease_ms  # renewed by as much at each record
        return await self.still_ours()

    async def _conclude(
        self,
        endpoint: Endpoint,
        delivery: Delivery,
        started: float,
        result: AttemptResult,
        now: float,
    ) -> Delivery | None:
        """Judge the attempt, record it, and let the queue go on, wait or park."""
        d = self.d
        decision = _decide(d.settings, endpoint, delivery, result, now)
        verdict = decision.verdict
        if verdict is Verdict.DISABLE:
            reason = f"the endpoint answered {result.status_code} Gone"
            # Its outcome, folded in later, finds the endpoint disabled: the error goes now.
            fields = {
                **health.EndpointHealth.disabled_fields(reason, now),
                "lastError": attempt_log.error_text(result) or "",
                "lastErrorAt": now,
            }
            await d.redis.hset(keys.endpoint_health(self.endpoint_id), fields)
            # This worker's other queues of the endpoint stop now, not once the outcome is
            # folded in: one of them would send a request to the gone endpoint meanwhile.
            d.endpoints.state_changed(self.endpoint_id, "disabled")
        recorded = await self._record(delivery, started, result, _ending(d.settings, decision, now))
        if not recorded.ours:
            return None
        if verdict is Verdict.RETRY:
            d.book.due(self.member, now + decision.delay)
        elif verdict is Verdict.DISABLE:
            await self._park()
        return recorded.next

    async def _record(
        self, delivery: Delivery, started: float, result: AttemptResult, ending: Ending
    ) -> attempt_log.Recorded:
        """Record the attempt (nothing is recorded when the queue is no longer ours)."""
        d = self.d
        if ending.dead:
            # Listed first (sb:dead is not in the conversation's hash slot): should we die
            # before the record, the listing skips it until it is dead.
            dead_at = clock.ms(clock.now())
            d.redis.call("ZADD", keys.DEAD, dead_at, delivery.id)
            d.redis.call("ZADD", keys.endpoint_dead(self.endpoint_id), dead_at, delivery.id)
        recorded = await attempt_log.record(
            d.redis,
            d.settings,
            self.conversation_key,
            delivery,
            self.token,
            started,
            result,
            ending,
            lease_ms=self.lease_ms,
        )
        if not recorded.ours:
            record = keys.delivery(self.conversation_key, delivery.id)
            if ending.dead and not await d.redis.call("EXISTS", record):
                # Removed meanwhile (its endpoint went): its listing entry goes too, or it
                # would be counted in the dead letters' total for the whole retention.
                d.redis.call("ZREM", keys.DEAD, delivery.id)
                d.redis.call("ZREM", keys.endpoint_dead(self.endpoint_id), delivery.id)
            return recorded
        attempt_log.report(delivery, result, ending, clock.now())
        if recorded.wake:
            await d.wake_turn(self.conversation_key)
        if ending.fate == "leaves" and recorded.next is None:
            d.book.done(self.member)
        return recorded

    async def _dead_letter(self, delivery: Delivery, error: str) -> Delivery | None:
        """End the head in the dead-letter list without an attempt, saying why."""
        now = clock.now()
        ending = attempt_log.dead(self.d.settings, now)
        recorded = await self._record(delivery, now, AttemptResult(None, 0, error=error), ending)
        return recorded.next

    async def wait(self, until: float) -> None:
        """Let go until `until`; the entry stays on `sb:due` meanwhile, at the claim's end."""
        await self.release()
        self.d.book.due(self.member, until)

    async def _park(self) -> None:
        """Hold the queue while its endpoint is disabled; `health.enable` wakes it."""
        redis = self.d.redis
        await self.release()
        parked = keys.endpoint_parked(self.endpoint_id)
        # Parked before the entry goes: a crash between leaves both, never neither.
        await redis.call("SADD", parked, self.ref)
        due = keys.due(self.member, redis.index_shards)
        await redis.call("ZREM", due, self.member)
        # An operator may have enabled the endpoint meanwhile, and found nothing parked.
        state = await redis.call("HGET", *health.state_read(self.endpoint_id))
        if state != "disabled" and await redis.call("SREM", parked, self.ref):
            await redis.call("ZADD", due, clock.now(), self.member)


def _expired(delivery: Delivery) -> str:
    """Why an expired delivery is dead-lettered. With no attempt recorded it may still have
    reached its endpoint: an attempt that a stopped worker cut short is not recorded."""
    if delivery.attempt_count:
        return "expired before an answer was recorded"
    return (
        "expired before any attempt was recorded: the deliveries before it in its queue "
        "held it back, or a stopped worker cut its attempt short"
    )


async def _send(d: Deliverer, endpoint: Endpoint, delivery: Delivery, at: float) -> AttemptResult:
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
    connect_timeout, total_timeout = endpoint.timeouts(d.settings)
    return await d.client.post(
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


def _ending(settings: Settings, decision: Decision, now: float) -> Ending:
    if decision.verdict is Verdict.DELIVERED:
        return attempt_log.delivered(settings, now)
    if decision.verdict is Verdict.DEAD:
        return attempt_log.dead(settings, now)
    if decision.verdict is Verdict.RETRY:
        return attempt_log.retry_at(now + decision.delay)
    return attempt_log.held()  # DISABLE: it waits, parked, for the endpoint
