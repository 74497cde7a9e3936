"""Heartbeats at Redis's time: a process whose clock is off is counted, counts the others
right, says in its log that its clock is off, and goes by Redis's clock meanwhile."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from broker.core import clock, heartbeats
from broker.core.connection import Redis
from broker.core.defaults import HEARTBEAT_TTL


@pytest.fixture(autouse=True)
def own_clock() -> Iterator[None]:
    yield
    clock.follow(0.0)


def on_a_clock_off_by(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(clock, "time", SimpleNamespace(time=lambda: time.time() + seconds))


@pytest.mark.parametrize("off", [-10 * 60, -30.0, 30.0, 10 * 60])
def test_a_process_whose_clock_is_off_is_counted_and_counts_the_others(
    fake_redis: Redis, monkeypatch: pytest.MonkeyPatch, off: float
) -> None:
    heartbeats.beat(fake_redis, "worker", "in-time:1")
    on_a_clock_off_by(monkeypatch, off)
    assert heartbeats.beat(fake_redis, "worker", "off:2") == pytest.approx(off, abs=1.0)
    assert heartbeats.alive(fake_redis, "worker") == 2
    # Read on the off clock, the beats are just now on that clock.
    for found in heartbeats.live(fake_redis, "worker"):
        assert clock.now() - found.at == pytest.approx(0.0, abs=1.0)
    monkeypatch.undo()
    assert heartbeats.alive(fake_redis, "worker") == 2


def test_a_beat_older_than_the_ttl_at_redis_s_time_is_dropped(fake_redis: Redis) -> None:
    key = "sb:heartbeats:scheduler"
    fake_redis.zadd(key, {"gone:1": time.time() - HEARTBEAT_TTL - 1})
    assert heartbeats.alive(fake_redis, "scheduler") == 0
    heartbeats.beat(fake_redis, "scheduler", "here:2")
    assert fake_redis.zrange(key, 0, -1) == ["here:2"]


def test_a_clock_off_from_redis_s_is_said_once_and_when_it_agrees_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=heartbeats.__name__)
    skewed = heartbeats.follow_redis("worker", 30.0, False)
    skewed = heartbeats.follow_redis("worker", 31.0, skewed)
    skewed = heartbeats.follow_redis("worker", 0.2, skewed)
    said = [record.getMessage() for record in caplog.records]
    assert said == [
        "worker clock is 30.0 s ahead of Redis's: this process goes by Redis's clock; keep the "
        "hosts' clocks in sync (NTP)",
        "worker clock agrees with Redis's again: this process goes by its own",
    ]
    assert not skewed


@pytest.mark.parametrize("off", [-10 * 60, -3.0, 3.0, 10 * 60])
def test_a_process_whose_clock_is_off_goes_by_redis_s(
    fake_redis: Redis, monkeypatch: pytest.MonkeyPatch, off: float
) -> None:
    on_a_clock_off_by(monkeypatch, off)
    heartbeats.follow_redis("worker", heartbeats.beat(fake_redis, "worker", "off:1"), False)
    assert clock.now() == pytest.approx(time.time(), abs=0.5)
    assert clock.host_now() == pytest.approx(time.time() + off, abs=0.5)
    monkeypatch.undo()
    heartbeats.follow_redis("worker", heartbeats.beat(fake_redis, "worker", "off:1"), True)
    assert clock.now() == pytest.approx(time.time(), abs=0.5)


def test_a_clock_a_little_off_goes_its_own_way(
    fake_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_a_clock_off_by(monkeypatch, 1.0)
    heartbeats.follow_redis("worker", heartbeats.beat(fake_redis, "worker", "near:1"), False)
    assert clock.now() == pytest.approx(time.time() + 1.0, abs=0.2)
