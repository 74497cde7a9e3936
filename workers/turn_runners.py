"""The worker process's turn runners: threads that take conversations whose turn is due from
the ready list, many at a time, and run their turns together (`turns.run_batch`), one
runner at a time unless one waits on a bot's API call (`workers/runner_lock.py`).

A runner about to wait on a bot's API call or a custom action goes away: a new runner takes
its place, first running the rest of its batch (`turns.GoAway`), so that the ready list is
still served whatever the bots' APIs do; the runner that went away ends once its turn is
committed. At most SWITCHBOARD_TURN_RUNNERS_AWAY of them are away at once; past it, a turn
about to wait is put off for a moment (`turns.TooManyAway`).

The web process puts a conversation on the ready list when its first waiting message
arrives, so a turn starts at once, without a task of its own; what a runner misses (it
dies with conversations in hand) is on the turn schedule, and the scheduler brings it back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from broker.conversations import turns
from broker.core import heartbeats, ids, keys, logs
from broker.core.connection import REDIS_TROUBLE, Redis
from workers import runner_lock
from workers.process import Process

log = logging.getLogger(__name__)
#: Says when Redis answers again after the trouble logged here.
redis_outage = logs.RedisOutage(log)

#: Conversations one runner takes from the ready list at once, at most.
BATCH = 64
#: How long a runner waits on an empty ready list before it looks again (seconds).
_WAIT = 1.0


_local = threading.local()


@dataclass
class Runners:
    """The running turn runners of a process."""

    process: Process
    #: Taken by each runner away on something outside.
    away: threading.BoundedSemaphore
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    #: Marked at each pass, for the heartbeat (`heartbeats.Progress`).
    progress: heartbeats.Progress | None = None
    _started: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self, timeout: float) -> None:
        """Take no more conversations; wait up to `timeout` seconds for the batches being
        run to commit (their deliveries then go to the delivery loop)."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                running = [thread for thread in self.threads if thread.is_alive()]
            if not running:
                return
            running[0].join(max(deadline - time.monotonic(), 0.0))

    def start_runner(self, first: Callable[[], int] | None = None) -> None:
        """A new runner, which runs `first` (the rest of a batch) before it takes turns."""
        with self._lock:
            self.threads[:] = [thread for thread in self.threads if thread.is_alive()]
            thread = threading.Thread(
                target=_run, args=(self, first), name=f"turns-{self._started}", daemon=True
            )
            self._started += 1
            self.threads.append(thread)
        thread.start()

    def go_away(self, split: Callable[[], Callable[[], int]]) -> bool:
        """`turns.GoAway`: this runner is about to wait outside; unless it is away already,
        a new runner takes its place with the rest of its batch. TooManyAway when too many
        are away."""
        if getattr(_local, "away", False):
            return False
        if not self.away.acquire(blocking=False):
            raise turns.TooManyAway()
        _local.away = True
        self.start_runner(split())
        return True

    def came_back(self) -> bool:
        """Whether this runner went away (it was replaced, so it ends)."""
        if not getattr(_local, "away", False):
            return False
        _local.away = False
        self.away.release()
        return True


def start(
    process: Process, runners: int, away: int, progress: heartbeats.Progress | None = None
) -> Runners:
    """`runners` runners, of which `away` at most may wait outside at once; each marks
    `progress` at each pass."""
    started = Runners(process, threading.BoundedSemaphore(away), progress=progress)
    for _ in range(runners):
        started.start_runner()
    return started


@dataclass(frozen=True)
class _Held:
    """A batch whose turns Redis failed under: its conversations, held with `token`, to be
    handed back (`turns.hand_back`) once Redis answers, until `until` (when their claims
    run out anyway)."""

    conversation_keys: list[str]
    token: str
    until: float


def _run(runners: Runners, first: Callable[[], int] | None) -> None:
    """A runner's thread: `first`, then batch after batch."""
    _Runner(runners).run(first)


class _Runner:
    """One turn runner: it runs batch after batch until the process stops, or until it went
    away and a new runner took its place."""

    def __init__(self, runners: Runners) -> None:
        self.runners = runners
        self.process = runners.process
        #: The last batch Redis failed under, handed back once it answers.
        self.held: _Held | None = None
        #: Whether its last batch went away (`Runners.came_back`): the runner ends.
        self.replaced = False
        #: When its current pass (a hand-back, a take and its batch) began.
        self.pass_began = time.monotonic()

    def run(self, first: Callable[[], int] | None) -> None:
        """`first` (the rest of a batch), then batch after batch, through Redis's trouble and
        whatever a batch raises."""
        stop = self.runners.stopping
        if first is not None:
            self._run_rest(first)
        while not stop.is_set():
            self._next_pass()
            try:
                self._hand_back()
                if self.replaced:
                    return
                self._take_turns()
            except REDIS_TROUBLE as exc:
                self._log_redis_trouble(exc)
                stop.wait(1.0)
            except BaseException:
                # Whatever a batch raises (SystemExit too), the runner goes on: a thread that
                # ended would leave the ready list to fewer runners, one by one to none.
                self.held = None
                log.exception("turn runner failed; going on")

    def _run_rest(self, first: Callable[[], int]) -> None:
        try:
            # Beside the runner that takes turns, not after it: waiting for the runner lock,
            # the rest of a batch could wait behind batch after batch of others, its
            # conversations held all the while, until their claims ran out.
            first()
        except BaseException:
            # Their claims run out, and the scheduler brings them back.
            log.exception("turn runner: the rest of a batch failed")
        finally:
            self.replaced = self.runners.came_back()

    def _hand_back(self) -> None:
        """Hand back the batch Redis failed under, unless its claims ran out meanwhile."""
        held = self.held
        if held is not None and time.monotonic() < held.until:
            turns.hand_back(self.process.redis, held.conversation_keys, held.token)
        self.held = None

    def _take_turns(self) -> None:
        """Take and run batches while this runner holds the runner lock."""
        with runner_lock.running_turns():
            # The lock is kept from batch to batch until a wait outside lets it go:
            # let go after each batch, it woke a waiting runner for nothing, at light
            # load once for every message.
            while runner_lock.holding() and not self.runners.stopping.is_set():
                self._next_pass()
                taken = _take(self.process.redis)
                redis_outage.ended()
                if taken:
                    self._run_one_batch(taken)

    def _run_one_batch(self, taken: list[str]) -> None:
        """Run the turns of `taken`; should Redis fail under them, they are `held`."""
        process, token = self.process, ids.random_hex(8)
        try:
            turns.run_batch(
                process.redis,
                process.settings,
                process.sender,
                taken,
                actions=process.actions,
                hand_off=process.deliveries.offer_claimed,
                token=token,
                go_away=self.runners.go_away,
            )
        except REDIS_TROUBLE:
            until = time.monotonic() + process.settings.claim_lease
            self.held = _Held(taken, token, until)
            raise
        finally:
            self.replaced = self.runners.came_back()

    def _next_pass(self) -> None:
        self.pass_began = time.monotonic()
        if self.runners.progress is not None:
            self.runners.progress.mark("turn runners")

    def _log_redis_trouble(self, exc: BaseException) -> None:
        redis_outage.began(since=self.pass_began)
        if self.held is None:
            log.warning("turn runner: Redis failed, trying again: %s", exc)
        else:
            log.warning(
                "turn runner: Redis failed under a batch of %d conversation(s), handed "
                "back once it answers: %s",
                len(self.held.conversation_keys),
                exc,
            )


def _take(r: Redis) -> list[str]:
    """Up to BATCH conversations from the ready list, waiting up to _WAIT for the first, in
    one round trip: Redis runs the LPOP queued behind a BLPOP once the BLPOP is answered."""
    pipe = r.pipeline(transaction=False)
    pipe.blpop([keys.READY], timeout=_WAIT)
    pipe.lpop(keys.READY, BATCH - 1)
    first, more = pipe.execute()
    # With no first (the wait ran out), the LPOP may still have found some just pushed.
    return [*(first[1:] if first else []), *(more or [])]
