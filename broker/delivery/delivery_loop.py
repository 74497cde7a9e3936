"""A worker process's delivery loop: an event loop in a thread of its own that works many
delivery queues at once, each in a task, their HTTP requests and Redis commands
interleaved.

Queues come two ways: claimed by this process's bot turns (with the first delivery in
hand, so nothing needs reading before the attempt), or offered by the scheduler or the web
process as entries of `sb:due` (then claimed here first, with the entry's token). A queue
being worked that comes again is worked once more, under that claim, when its task ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from broker import __version__
from broker.core import ids, keys, logs
from broker.core.autopipe import AutoPipeline
from broker.core.connection import connect_async, unavailable_reason
from broker.core.heartbeats import Progress
from broker.core.loop_thread import LoopThread
from broker.core.settings import Settings
from broker.delivery import queues
from broker.delivery.bookkeeping import Bookkeeping
from broker.delivery.endpoint_cache import EndpointCache
from broker.delivery.http_client import HttpClient
from broker.delivery.records import Delivery, split_due_member

log = logging.getLogger(__name__)
#: Says when Redis answers again after the trouble logged here.
redis_outage = logs.RedisOutage(log)

USER_AGENT = f"Switchboard-Webhooks/{__version__}"
#: While draining, how often it looks whether the queues have ended (seconds) ...
DRAIN_POLL = 0.05
#: ... and how long the last writes may take after the grace (seconds).
DRAIN_WRITE_TIMEOUT = 5.0
#: A queue left because Redis failed is handed back once Redis answers: first tried after
#: this long (seconds), then twice as long each time, up to the second figure.
HAND_BACK_PAUSE = 0.5
HAND_BACK_PAUSE_MAX = 4.0


class DeliveryLoop:
    def __init__(self, settings: Settings, thread: LoopThread) -> None:
        self.settings = settings
        self._thread = thread
        self._active: set[str] = set()
        #: Claims that came for queues being worked, taken up in turn.
        self._next: dict[str, list[tuple[str, Delivery | None, float]]] = {}
        self.deliverer = thread.run(self._deliverer(), timeout=30)

    def drain(self, grace: float) -> None:
        """Stop (from another thread): the attempts in flight end and are recorded, for up to
        `grace` seconds; every queue is handed back, due now; what was gathered is written."""
        try:
            self._thread.run(self._drain(grace), timeout=grace + DRAIN_WRITE_TIMEOUT)
        except TimeoutError:
            log.warning("the delivery loop did not drain within %g s", grace)

    def report_to(self, progress: Progress) -> None:
        """Mark `progress` while the loop goes round (`LoopThread.report_to`)."""
        self._thread.report_to(progress)

    def stop_taking(self) -> None:
        """Begin to drain (from any thread, a signal handler's too): the queues' next
        attempts are not made, the queues are handed back."""
        self._thread.call_soon(setattr, self.deliverer, "draining", True)

    async def _drain(self, grace: float) -> None:
        self.deliverer.draining = True
        deadline = time.monotonic() + grace
        while self._active and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL)
        if self._active:
            log.warning("%d delivery queue(s) still in flight at shutdown", len(self._active))
        await self.deliverer.book.flush()

    def offer(self, members: Iterable[str]) -> None:
        """Work these queues, entries of `sb:due` naming the claim to take (any thread)."""
        self._thread.call_soon(self._start_all, list(members))

    def offer_claimed(self, token: str, claimed: dict[str, list[Delivery]]) -> None:
        """Work these queues, claimed with `token`, from their first delivery (any thread);
        a queue given none is claimed with `token` and its head read."""
        heads = {ref: deliveries[0] if deliveries else None for ref, deliveries in claimed.items()}
        self._thread.call_soon(self._start_claimed, token, heads, time.monotonic())

    def _start_all(self, members: list[str]) -> None:
        for member in members:
            ref, token = split_due_member(member)
            self._start(ref, token or ids.random_hex(8))

    def _start_claimed(
        self, token: str, heads: dict[str, Delivery | None], claimed_at: float
    ) -> None:
        for ref, head in heads.items():
            self._start(ref, token, head, claimed_at)

    async def _deliverer(self) -> queues.Deliverer:
        settings = self.settings
        client = connect_async(settings.redis_url, sentinel_master=settings.sentinel_master)
        redis = AutoPipeline(client)
        endpoints = EndpointCache(redis)
        self._following = asyncio.get_running_loop().create_task(endpoints.follow_changes(client))
        return queues.Deliverer(
            settings,
            redis,
            HttpClient(settings.outbound_allowlist, USER_AGENT),
            endpoints,
            Bookkeeping(settings, redis, endpoints.state_changed),
            lambda conversation_key: redis.call("RPUSH", keys.READY, conversation_key),
        )

    async def _hand_back(self, ref: str, token: str) -> None:
        """Once Redis answers again, hand the queue back (`queues.hand_back`) rather than
        leave it to the end of its claim, which can be 40 s away; tried until the claim
        would have run out anyway."""
        give_up = time.monotonic() + self.settings.claim_lease
        pause = HAND_BACK_PAUSE
        while time.monotonic() + pause < give_up and not self.deliverer.draining:
            await asyncio.sleep(pause)
            try:
                await queues.hand_back(self.deliverer, ref, token)
                redis_outage.ended()
                return
            except Exception as exc:
                if unavailable_reason(exc) is None:
                    log.exception("handing back delivery queue %s failed", ref)
                    return
            pause = min(pause * 2, HAND_BACK_PAUSE_MAX)

    def _start(
        self, ref: str, token: str, head: Delivery | None = None, claimed_at: float = 0.0
    ) -> None:
        if ref in self._active:
            # Worked again once the current task ends: new deliveries may have come.
            self._next.setdefault(ref, []).append((token, head, claimed_at))
            return
        self._active.add(ref)
        asyncio.get_running_loop().create_task(self._work(ref, token, head, claimed_at))

    async def _work(self, ref: str, token: str, head: Delivery | None, claimed_at: float) -> None:
        try:
            while True:
                try:
                    await queues.work_queue(self.deliverer, ref, token, head, claimed_at)
                    redis_outage.ended()
                except Exception as exc:
                    # Its claim runs out on sb:due and the scheduler hands the queue on again.
                    reason = unavailable_reason(exc)
                    if reason is None:
                        log.exception("working delivery queue %s failed", ref)
                    else:
                        # The reason in the text: a kind of line of its own (`logs.Repeats`).
                        log.warning(f"delivery queue %s left for now: Redis is {reason}", ref)
                        redis_outage.began()
                        await self._hand_back(ref, token)
                waiting = self._next.get(ref)
                if not waiting:
                    return
                token, head, claimed_at = waiting.pop(0)
                if not waiting:
                    del self._next[ref]
        finally:
            self._active.discard(ref)
