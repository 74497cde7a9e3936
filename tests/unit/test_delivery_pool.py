"""The worker process's delivery threads: room per endpoint, waiting, and handing back."""

from __future__ import annotations

import threading
from collections import Counter

from broker.core import keys
from broker.core.connection import Redis
from tests.polling import wait_until
from workers.delivery_pool import DeliveryPool


class Gatekeeper:
    """A work function that blocks until released, and counts what it worked."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, ref: str) -> None:
        with self.lock:
            self.started[ref] += 1
        self.release.wait(5)


def test_one_endpoint_gets_at_most_its_share_and_others_still_go(fake_redis: Redis) -> None:
    work = Gatekeeper()
    pool = DeliveryPool(fake_redis, work, size=4, per_endpoint=2)
    slow = [f"s{i}|slow" for i in range(8)]
    fake_redis.zadd(keys.DUE, dict.fromkeys(slow, 1e12))
    handed_back = pool.offer(slow)
    # 2 run, 2 wait in the process for the endpoint's room, the other 4 go back.
    assert handed_back == 4
    wait_until(lambda: len(work.started) == 2)
    assert pool.offer(["a|quick", "b|quick", "c|quick"]) == 0  # 2 run; "c" waits here
    wait_until(lambda: len(work.started) == 4)
    assert set(work.started) == {"s0|slow", "s1|slow", "a|quick", "b|quick"}
    due = dict(fake_redis.zrange(keys.DUE, 0, -1, withscores=True))
    assert sorted(ref for ref, score in due.items() if score < 1e12) == slow[4:]
    work.release.set()
    wait_until(lambda: len(work.started) == 7)
    wait_until(lambda: pool.in_flight == 0)
    assert set(work.started) == {*slow[:4], "a|quick", "b|quick", "c|quick"}
    pool.shutdown()


def test_a_queue_offered_while_it_is_worked_is_worked_again(fake_redis: Redis) -> None:
    work = Gatekeeper()
    pool = DeliveryPool(fake_redis, work, size=4, per_endpoint=4)
    pool.offer(["s|e"])
    wait_until(lambda: work.started["s|e"] == 1)
    assert pool.offer(["s|e", "s|e"]) == 0
    work.release.set()
    wait_until(lambda: pool.in_flight == 0)
    assert work.started["s|e"] == 2
    pool.shutdown()


def test_a_failing_queue_frees_its_thread(fake_redis: Redis) -> None:
    def broken(ref: str) -> None:
        raise RuntimeError("Redis went away")

    pool = DeliveryPool(fake_redis, broken, size=1, per_endpoint=1)
    pool.offer(["s|e"])
    wait_until(lambda: pool.in_flight == 0)
    assert pool.offer(["t|e"]) == 0
    pool.shutdown()


def test_handing_back_never_postpones_a_queue_or_revives_a_finished_one(
    fake_redis: Redis,
) -> None:
    work = Gatekeeper()
    pool = DeliveryPool(fake_redis, work, size=1, per_endpoint=1)
    fake_redis.zadd(keys.DUE, {"early|e": 1.0})
    pool.offer(["x|e", "w|e", "early|e", "gone|e"])
    assert fake_redis.zscore(keys.DUE, "early|e") == 1.0
    assert fake_redis.zscore(keys.DUE, "gone|e") is None
    work.release.set()
    pool.shutdown()
