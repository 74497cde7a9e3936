"""A lease lock acquired within a deadline."""

from __future__ import annotations

import time

from broker.core.connection import Redis
from broker.core.locks import Lock


def test_a_held_lock_is_not_acquired_within_the_wait(fake_redis: Redis) -> None:
    assert Lock(fake_redis, "lock", 10).acquire()
    started = time.monotonic()
    assert not Lock(fake_redis, "lock", 10).acquire_within(0.05)
    assert time.monotonic() - started >= 0.05


def test_a_lock_let_go_is_acquired_within_the_wait(fake_redis: Redis) -> None:
    held = Lock(fake_redis, "lock", 10)
    assert held.acquire()
    held.release()
    assert Lock(fake_redis, "lock", 10).acquire_within(0.05)
