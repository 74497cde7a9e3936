"""The worker process's turn runners: threads that take conversations whose turn is due from
the ready list, many at a time, and run their turns together (`turns.run_batch`), one
runner at a time unless one waits on a bot's API call (`workers/runner_lock.py`).

The web process puts a conversation on the ready list when its first waiting message
arrives, so a turn starts at once, without a task of its own; what a runner misses (it
dies with conversations in hand) is on the turn schedule, and the scheduler brings it back.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from broker.conversations import turns
from broker.core import ids, keys
from broker.core.connection import REDIS_TROUBLE, Redis
from workers import runner_lock
from workers.process import Process

log = logging.getLogger(__name__)

#: Conversations one runner takes from the ready list at once, at most.
BATCH = 64
#: How long a runner waits on an empty ready list before it looks again (seconds).
_WAIT = 1.0


@dataclass
class Runners:
    """The running turn runners of a process."""

    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def stop(self, timeout: float) -> None:
        """Take no more conversations; wait up to `timeout` seconds for the batches being
        run to commit (their deliveries then go to the delivery loop)."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(deadline - time.monotonic(), 0.0))


def start(process: Process, runners: int) -> Runners:
    started = Runners()
    for number in range(runners):
        thread = threading.Thread(
            target=_run, args=(process, started.stopping), name=f"turns-{number}", daemon=True
        )
        thread.start()
        started.threads.append(thread)
    return started


@dataclass(frozen=True)
class _Held:
    """A batch whose turns Redis failed under: its conversations, held with `token`, to be
    handed back (`turns.hand_back`) once Redis answers, until `until` (when their claims
    run out anyway)."""

    conversation_keys: list[str]
    token: str
    until: float


def _run(process: Process, stop: threading.Event) -> None:
    r = process.redis
    held: _Held | None = None
    while not stop.is_set():
        try:
            if held is not None and time.monotonic() < held.until:
                turns.hand_back(r, held.conversation_keys, held.token)
            held = None
            with runner_lock.running_turns():
                # The lock is kept from batch to batch until a wait outside lets it go:
                # let go after each batch, it woke a waiting runner for nothing, at light
                # load once for every message.
                while runner_lock.holding() and not stop.is_set():
                    taken = _take(r)
                    if taken:
                        token = ids.random_hex(8)
                        try:
                            turns.run_batch(
                                r,
                                process.settings,
                                process.sender,
                                taken,
                                actions=process.actions,
                                hand_off=process.deliveries.offer_claimed,
                                token=token,
                            )
                        except REDIS_TROUBLE:
                            until = time.monotonic() + process.settings.claim_lease
                            held = _Held(taken, token, until)
                            raise
        except REDIS_TROUBLE as exc:
            if held is None:
                log.warning("turn runner: Redis failed, trying again: %s", exc)
            else:
                log.warning(
                    "turn runner: Redis failed under a batch of %d conversation(s), handed "
                    "back once it answers: %s",
                    len(held.conversation_keys),
                    exc,
                )
            stop.wait(1.0)
        except Exception:
            held = None
            log.exception("turn runner failed; going on")


def _take(r: Redis) -> list[str]:
    """Up to BATCH conversations from the ready list, waiting up to _WAIT for the first, in
    one round trip: Redis runs the LPOP queued behind a BLPOP once the BLPOP is answered."""
    pipe = r.pipeline(transaction=False)
    pipe.blpop([keys.READY], timeout=_WAIT)
    pipe.lpop(keys.READY, BATCH - 1)
    first, more = pipe.execute()
    # With no first (the wait ran out), the LPOP may still have found some just pushed.
    return [*(first[1:] if first else []), *(more or [])]
