"""A worker process's delivery threads: many queues at once, never all of them for one endpoint.

The delivery task only hands its queues to the pool and returns, so a Celery thread is
never held by a slow endpoint. The pool works up to `delivery_concurrency` queues at
once, at most `endpoint_concurrency` of them for one endpoint; a queue that finds no
room waits in the process for a thread of its endpoint (at most as many as could run),
and beyond that goes back to the scheduler for a moment. A queue waiting here keeps its
claim on `sb:due`: if the process dies, the scheduler hands it to another worker.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from broker.core import clock
from broker.core.connection import Redis
from broker.core.defaults import DELIVERY_BUSY_RETRY
from broker.delivery import queues
from broker.delivery.records import split_ref

log = logging.getLogger(__name__)


class DeliveryPool:
    def __init__(
        self,
        r: Redis,
        work: Callable[[str], object],
        *,
        size: int,
        per_endpoint: int,
    ) -> None:
        self._r = r
        self._work = work
        self.size = max(size, 1)
        self.per_endpoint = max(min(per_endpoint, self.size), 1)
        self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="deliver")
        self._lock = threading.Lock()
        self._running: Counter[str] = Counter()
        self._total = 0
        self._waiting: OrderedDict[str, deque[str]] = OrderedDict()
        self._waiting_total = 0
        self._known: set[str] = set()
        #: Queues offered again while a thread of ours works them: that thread may be on
        #: its way out, so it works them once more before leaving.
        self._again: set[str] = set()

    @property
    def in_flight(self) -> int:
        return self._total

    def offer(self, refs: Iterable[str]) -> int:
        """Take these queues on; returns how many were handed back to the scheduler."""
        busy: list[str] = []
        with self._lock:
            for ref in refs:
                if ref in self._known:
                    self._again.add(ref)
                    continue
                endpoint_id = split_ref(ref)[1]
                if self._total < self.size and self._running[endpoint_id] < self.per_endpoint:
                    self._start(ref, endpoint_id)
                elif (
                    self._waiting_total < self.size
                    and len(self._waiting.get(endpoint_id, ())) < self.per_endpoint
                ):
                    self._waiting.setdefault(endpoint_id, deque()).append(ref)
                    self._waiting_total += 1
                    self._known.add(ref)
                else:
                    busy.append(ref)
        if busy:
            queues.defer(self._r, busy, clock.now() + DELIVERY_BUSY_RETRY)
        return len(busy)

    def _start(self, ref: str, endpoint_id: str) -> None:
        self._running[endpoint_id] += 1
        self._total += 1
        self._known.add(ref)
        self._executor.submit(self._run, ref, endpoint_id)

    def _run(self, ref: str, endpoint_id: str) -> None:
        while True:
            try:
                self._work(ref)
            except Exception:
                # Its claim runs out on sb:due and the scheduler hands the queue on again.
                log.exception("working delivery queue %s failed", ref)
            with self._lock:
                if ref in self._again:
                    self._again.discard(ref)
                    continue
                self._running[endpoint_id] -= 1
                if not self._running[endpoint_id]:
                    del self._running[endpoint_id]
                self._total -= 1
                self._known.discard(ref)
                self._start_waiting()
                return

    def _start_waiting(self) -> None:
        """Start queues that wait for room, the longest-waiting endpoint first."""
        for endpoint_id in list(self._waiting):
            if self._total >= self.size:
                return
            queue = self._waiting[endpoint_id]
            while (
                queue
                and self._total < self.size
                and (self._running[endpoint_id] < self.per_endpoint)
            ):
                self._waiting_total -= 1
                self._known.discard(ref := queue.popleft())
                self._start(ref, endpoint_id)
            if queue:
                self._waiting.move_to_end(endpoint_id)
            else:
                del self._waiting[endpoint_id]

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)
