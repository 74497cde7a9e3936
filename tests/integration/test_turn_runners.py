"""A turn runner takes its conversations from the ready list in one round trip."""

from __future__ import annotations

from broker.core import keys
from broker.core.connection import Redis
from workers import turn_runners


def test_a_runner_takes_a_batch_at_most_and_leaves_the_rest(r: Redis) -> None:
    waiting = [f"c{n}" for n in range(turn_runners.BATCH + 6)]
    r.rpush(keys.READY, *waiting)
    assert turn_runners._take(r) == waiting[: turn_runners.BATCH]
    assert turn_runners._take(r) == waiting[turn_runners.BATCH :]


def test_a_runner_takes_one_waiting_conversation_and_nothing_from_an_empty_list(
    r: Redis,
) -> None:
    r.rpush(keys.READY, "c1")
    assert turn_runners._take(r) == ["c1"]
    assert turn_runners._take(r) == []  # after its wait for one ran out
    assert r.llen(keys.READY) == 0
