"""The web process's gate on Redis (`web/redis_gate.py`): shut for a window once Redis is
found unreachable, then one probe at a time; any other end opens it again."""

from __future__ import annotations

import redis

from broker.core.errors import NotFound
from web.redis_gate import RedisGate, refusal, unreachable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def shut_gate(clock: Clock) -> RedisGate:
    gate = RedisGate(window=1.0, clock=clock)
    assert gate.admits()
    gate.settle(redis.TimeoutError("Timeout reading from socket"))
    return gate


def test_open_gate_admits_every_request() -> None:
    gate = RedisGate()
    assert gate.open
    assert all(gate.admits() for _ in range(3))
    gate.settle(None)
    gate.settle(NotFound("no such channel"))
    assert gate.open


def test_unreachable_redis_shuts_the_gate_for_the_window() -> None:
    clock = Clock()
    gate = shut_gate(clock)
    assert not gate.open
    assert not gate.admits()
    clock.now += 0.99
    assert not gate.admits()


def test_after_the_window_one_probe_at_a_time() -> None:
    clock = Clock()
    gate = shut_gate(clock)
    clock.now += 1.0
    assert gate.admits()  # the probe
    assert not gate.admits()  # the others wait for it
    gate.settle(redis.ConnectionError("Connection refused"))
    assert not gate.admits()  # shut for another window
    clock.now += 1.0
    assert gate.admits()
    gate.settle(None)
    assert gate.open
    assert gate.admits() and gate.admits()


def test_a_probe_that_fails_for_another_reason_opens_the_gate() -> None:
    clock = Clock()
    gate = shut_gate(clock)
    clock.now += 1.0
    assert gate.admits()
    gate.settle(NotFound("no such channel"))
    assert gate.open


def test_only_an_unreachable_redis_shuts_it() -> None:
    assert unreachable(redis.TimeoutError())
    assert unreachable(redis.ConnectionError())
    assert not unreachable(redis.exceptions.ReadOnlyError("READONLY"))
    assert not unreachable(redis.ResponseError("OOM command not allowed"))
    gate = RedisGate()
    gate.settle(redis.exceptions.ReadOnlyError("READONLY"))
    assert gate.open


def test_refusal_is_a_503_with_retry_after() -> None:
    refused = refusal()
    assert (refused.status, refused.code) == (503, "unavailable")
    assert refused.retry_after > 0
