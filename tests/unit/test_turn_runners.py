"""A turn runner outlives whatever a batch of turns raises, and one that went away gives its
place back (`Runners.came_back`) however its batch ended."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import cast

import pytest

from broker.conversations import turns
from broker.core.defaults import TURN_RUNNERS_AWAY
from broker.core.settings import Settings
from workers import turn_runners
from workers.process import Process


def _runners() -> turn_runners.Runners:
    process = SimpleNamespace(
        redis=None,
        settings=Settings(),
        sender=None,
        actions=None,
        deliveries=SimpleNamespace(offer_claimed=None),
    )
    return turn_runners.Runners(
        cast(Process, process), threading.BoundedSemaphore(TURN_RUNNERS_AWAY)
    )


def _in_a_thread(runners: turn_runners.Runners, first: Callable[[], int] | None) -> None:
    """`_run` in a thread of its own (its `away` is the thread's), until it ends."""
    thread = threading.Thread(target=turn_runners._run, args=(runners, first), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


def _places_free(runners: turn_runners.Runners) -> int:
    taken = 0
    while runners.away.acquire(blocking=False):
        taken += 1
    for _ in range(taken):
        runners.away.release()
    return taken


def test_the_rest_of_a_batch_that_went_away_and_raised_gives_its_place_back() -> None:
    """Else each such batch kept a place, until no runner could go away any more."""
    runners = _runners()
    runners.stopping.set()  # the runner ends once it has run `first`

    def first() -> int:
        assert runners.go_away(lambda: lambda: 0)
        raise SystemExit(2)

    _in_a_thread(runners, first)
    assert _places_free(runners) == TURN_RUNNERS_AWAY


def test_a_runner_goes_on_after_a_batch_that_raised_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runners = _runners()
    batches: list[list[str]] = []

    def run_batch(
        r: object, settings: object, sender: object, taken: list[str], **_: object
    ) -> int:
        batches.append(taken)
        if len(batches) == 1:
            raise SystemExit(2)
        runners.stopping.set()
        return 0

    monkeypatch.setattr(turn_runners, "_take", lambda r: ["c1"])
    monkeypatch.setattr(turns, "run_batch", run_batch)
    _in_a_thread(runners, None)
    assert batches == [["c1"], ["c1"]]
