"""A worker's event loop reports that it goes round: a call that blocks it stops the
worker's heartbeat, as a stuck turn runner does."""

from __future__ import annotations

import threading

from broker.core.heartbeats import Progress
from broker.core.loop_thread import LoopThread
from tests.polling import wait_until


class _Watched(Progress):
    def __init__(self, stuck_after: float) -> None:
        super().__init__(stuck_after)
        self.marked = threading.Event()

    def mark(self, loop: str) -> None:
        super().mark(loop)
        self.marked.set()


def test_a_loop_held_up_by_a_blocking_call_is_stuck_until_it_goes_round_again() -> None:
    progress = _Watched(stuck_after=0.3)
    thread = LoopThread("deliveries")
    held = threading.Event()
    try:
        thread.report_to(progress, every=0.05)
        assert progress.marked.wait(5)
        thread.call_soon(held.wait, 30)  # a call that blocks the loop
        wait_until(lambda: progress.stuck() == ["deliveries"], timeout=5, what="stuck")
        held.set()
        wait_until(lambda: progress.stuck() == [], timeout=5, what="going round again")
    finally:
        held.set()
        thread.stop()
