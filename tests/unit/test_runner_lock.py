"""One turn runner at a time (`workers.runner_lock`), and how a runner lets the next go."""

from __future__ import annotations

import threading

from workers import runner_lock


def _taken_elsewhere() -> bool:
    """Whether another thread can take turns now (it gives the lock back at once)."""
    result: list[bool] = []

    def try_it() -> None:
        acquired = runner_lock._LOCK.acquire(blocking=False)
        if acquired:
            runner_lock._LOCK.release()
        result.append(acquired)

    thread = threading.Thread(target=try_it)
    thread.start()
    thread.join()
    return result[0]


def test_a_runner_holds_the_lock_inside_and_lets_go_after() -> None:
    assert not runner_lock.holding()
    with runner_lock.running_turns():
        assert runner_lock.holding()
        assert not _taken_elsewhere()
    assert not runner_lock.holding()
    assert _taken_elsewhere()


def test_a_runner_about_to_wait_lets_the_next_in_and_finishes_beside_it() -> None:
    with runner_lock.running_turns():
        runner_lock.let_others_run()
        assert not runner_lock.holding()
        assert _taken_elsewhere()
        runner_lock.let_others_run()  # a second wait in the same batch lets go of nothing
    assert _taken_elsewhere()
