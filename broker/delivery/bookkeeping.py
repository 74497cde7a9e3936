"""What the delivery loop writes after attempts, gathered and written a little later:
endpoint health (outcomes in order, a run of successes as one) and each queue's place on
`sb:due`. None of it is needed for a delivery to be safe: a lost outcome only delays a
circuit breaker, a lost `sb:due` change only makes the scheduler look at a queue that has
nothing for it (or look at it at the end of its claim).

What changes something soon (a failure, which may open a circuit; a queue due again) is
written within FLUSH_SOON; what only confirms (successes, emptied queues) within
FLUSH_LATER, so that at a light load many deliveries share one write, as they do at full
load."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from broker.core import keys
from broker.core.autopipe import AutoPipeline
from broker.core.settings import Settings
from broker.delivery import health
from broker.delivery.health import OutcomeRun

log = logging.getLogger(__name__)

#: How long a failure or a queue due again waits to be written, gathered with others (s) ...
FLUSH_SOON = 0.01
#: ... and how long a success or an emptied queue may (s).
FLUSH_LATER = 0.1


@dataclass
class Bookkeeping:
    settings: Settings
    redis: AutoPipeline
    #: Called with an endpoint's state after its outcomes are folded in.
    on_state: Callable[[str, str], None]
    _outcomes: dict[str, list[OutcomeRun]] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)
    _done: set[str] = field(default_factory=set)
    _timer: asyncio.TimerHandle | None = None
    _writing: asyncio.Task[None] | None = None

    def outcome(self, endpoint_id: str, at: float, ok: bool, error: str) -> None:
        runs = self._outcomes.setdefault(endpoint_id, [])
        if ok and runs and runs[-1].ok:
            runs[-1] = OutcomeRun(at, True, count=runs[-1].count + 1)
        else:
            runs.append(OutcomeRun(at, ok, error))
        self._flush_within(FLUSH_LATER if ok else FLUSH_SOON)

    def due(self, ref: str, at: float) -> None:
        """The queue waits until `at`: the scheduler hands it out then."""
        self._done.discard(ref)
        self._due[ref] = at
        self._flush_within(FLUSH_SOON)

    def done(self, ref: str) -> None:
        """The queue is empty and let go."""
        self._due.pop(ref, None)
        self._done.add(ref)
        self._flush_within(FLUSH_LATER)

    def _flush_within(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        at = loop.time() + delay
        if self._timer is not None:
            if self._timer.when() <= at:
                return
            self._timer.cancel()
        self._timer = loop.call_at(at, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        self._writing = asyncio.get_running_loop().create_task(self._write_gathered())

    async def flush(self) -> None:
        """Write what was gathered now, once a write under way has ended (at shutdown, the
        loop must not stop with it unfinished)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing is not None:
            await self._writing
        await self._write_gathered()

    async def _write_gathered(self) -> None:
        outcomes, self._outcomes = self._outcomes, {}
        due, self._due = self._due, {}
        done, self._done = self._done, set()
        await self._write(outcomes, due, done)

    async def _write(
        self, outcomes: dict[str, list[OutcomeRun]], due: dict[str, float], done: set[str]
    ) -> None:
        calls = []
        shards = self.redis.index_shards
        for shard, members in keys.by_shard(keys.DUE, due, shards).items():
            calls.append(self.redis.call("ZADD", shard, *_pairs({m: due[m] for m in members})))
        for shard, members in keys.by_shard(keys.DUE, done, shards).items():
            calls.append(self.redis.call("ZREM", shard, *members))
        states = {
            endpoint_id: self.redis.script(
                "endpoint_outcome", *health.outcome_call(self.settings, endpoint_id, runs)
            )
            for endpoint_id, runs in outcomes.items()
        }
        answers = await asyncio.gather(*calls, *states.values(), return_exceptions=True)
        failed = [answer for answer in answers if isinstance(answer, BaseException)]
        if failed:  # Redis away for a moment: nothing here is needed for safety
            log.warning("endpoint health and queue times not written: %s", failed[0])
        for endpoint_id, state in zip(states, answers[len(calls) :], strict=True):
            if not isinstance(state, BaseException):
                self.on_state(endpoint_id, str(state))


def _pairs(due: dict[str, float]) -> list[object]:
    return [part for ref, at in due.items() for part in (at, ref)]
