"""The watchdog of a worker told to stop (`workers.worker.see_it_ends`): whatever Celery does,
Switchboard's part stops and the process ends within a bound."""

from __future__ import annotations

import threading

from workers.worker import see_it_ends


def test_a_worker_whose_celery_never_begins_its_shutdown_is_stopped_and_ended() -> None:
    """As when its broker went away as it was told to stop: Celery retried a connection for
    ever, and the worker outlived its `switchboard run` by hours."""
    stopped: list[bool] = []
    ended: list[int] = []
    see_it_ends(lambda: stopped.append(True), threading.Event(), 0.01, 0.01, ended.append)
    assert stopped == [True] and ended == [0]


def test_a_worker_whose_celery_began_is_not_stopped_twice_but_still_ended() -> None:
    began = threading.Event()
    began.set()
    stopped: list[bool] = []
    ended: list[int] = []
    see_it_ends(lambda: stopped.append(True), began, 0.01, 0.01, ended.append)
    assert stopped == [] and ended == [0]
