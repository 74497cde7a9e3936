"""A heartbeat beats from a thread of its own: it stops while the loops of its process are
stuck, so that /readyz and `switchboard status` do not count a process that does nothing."""

from __future__ import annotations

import logging

import pytest

from broker.core import heartbeats
from broker.core.connection import Redis
from tests.polling import wait_until


def test_a_loop_is_stuck_once_it_has_not_gone_round_for_a_while() -> None:
    clock = [100.0]
    progress = heartbeats.Progress(30.0, now=lambda: clock[0])
    assert progress.stuck() == []  # no loop marked yet
    progress.mark("scheduler")
    clock[0] += 30.0
    assert progress.stuck() == []
    clock[0] += 0.5
    assert progress.stuck() == ["scheduler"]
    progress.mark("scheduler")
    assert progress.stuck() == []


def test_the_heartbeat_stops_while_the_loop_is_stuck(
    fake_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [100.0]
    progress = heartbeats.Progress(30.0, now=lambda: clock[0])
    progress.mark("scheduler")
    clock[0] += 31.0  # the loop sits in a call that never ends
    with caplog.at_level(logging.WARNING, logger=heartbeats.__name__):
        stop = heartbeats.start_thread(fake_redis, "scheduler", progress)
        try:
            wait_until(lambda: "heartbeat withheld" in caplog.text, timeout=5)
            assert heartbeats.live(fake_redis, "scheduler") == []
        finally:
            stop.set()


def test_the_heartbeat_beats_while_the_loop_goes_round(fake_redis: Redis) -> None:
    progress = heartbeats.Progress(30.0)
    progress.mark("scheduler")
    stop = heartbeats.start_thread(fake_redis, "scheduler", progress)
    try:
        wait_until(lambda: heartbeats.live(fake_redis, "scheduler"), timeout=5)
    finally:
        stop.set()
