"""Counting events in a process and adding them up in Redis (`broker.core.metrics`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any, cast, get_args

import fakeredis
import pytest

from broker.core import keys, metrics
from broker.core.connection import Redis
from broker.core.settings import Settings
from broker.delivery.endpoint import EndpointKind


@pytest.fixture
def recording(fake_redis: Redis) -> Iterator[Redis]:
    """This process counts into `fake_redis` during the test, and not after it."""
    metrics.start(fake_redis, Settings())
    yield fake_redis
    metrics.start(fake_redis, Settings(metrics=False))


def test_counts_are_added_to_redis_when_flushed(recording: Redis) -> None:
    metrics.count(metrics.INBOUND_MESSAGES, "ch_1", "queued")
    metrics.count(metrics.INBOUND_MESSAGES, "ch_1", "queued", n=2)
    metrics.count(metrics.INBOUND_MESSAGES, "ch_2", "rate_limited")
    metrics.flush()
    counts = metrics.read(recording)
    assert counts.counters["switchboard_inbound_messages"] == {
        ("ch_1", "queued"): 3,
        ("ch_2", "rate_limited"): 1,
    }
    assert counts.total(metrics.INBOUND_MESSAGES) == 4
    assert counts.total(metrics.INBOUND_MESSAGES, outcome="queued") == 3
    assert counts.total(metrics.INBOUND_MESSAGES, channel="ch_2") == 1


def test_the_series_of_a_removed_channel_are_forgotten(recording: Redis) -> None:
    for channel in ("ch_1", "ch_10", "ch_2"):
        metrics.count(metrics.INBOUND_MESSAGES, channel, "queued")
    metrics.flush()
    metrics.forget(recording, "ch_1")
    assert set(metrics.read(recording).counters["switchboard_inbound_messages"]) == {
        ("ch_10", "queued"),
        ("ch_2", "queued"),
    }


def test_flushes_add_to_what_other_processes_counted(recording: Redis) -> None:
    metrics.count(metrics.BOT_TURNS, "ok")
    metrics.flush()
    # Another process's flush, as it would write it.
    recording.hincrby(keys.METRICS, '["switchboard_bot_turns",["ok"],""]', 5)
    metrics.count(metrics.BOT_TURNS, "ok")
    metrics.flush()
    assert metrics.read(recording).total(metrics.BOT_TURNS, outcome="ok") == 7


def test_a_flush_returns_once_what_another_thread_was_flushing_is_in_redis(
    recording: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/metrics flushes, then reads: the counts the flushing thread was sending meanwhile
    must be in Redis by then."""
    sending, release = threading.Event(), threading.Event()
    pipeline = recording.pipeline

    def held_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        def held_execute(raise_on_error: bool = True) -> Any:
            sending.set()
            release.wait(10)
            return execute(raise_on_error)

        pipe.execute = held_execute  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(recording, "pipeline", held_pipeline)
    metrics.count(metrics.BOT_TURNS, "ok")
    flushing = threading.Thread(target=metrics.flush)
    flushing.start()
    assert sending.wait(10)
    monkeypatch.undo()
    threading.Timer(0.05, release.set).start()
    metrics.flush()
    assert metrics.read(recording).total(metrics.BOT_TURNS) == 1
    flushing.join()


def test_a_histogram_keeps_cumulative_buckets_a_sum_and_a_count(recording: Redis) -> None:
    for seconds in (0.003, 0.2, 0.2, 45.0):
        metrics.observe(metrics.ATTEMPT_DURATION, seconds, "channel")
    metrics.flush()
    found = metrics.read(recording).histograms[metrics.ATTEMPT_DURATION.name][("channel",)]
    bounds = [*metrics.ATTEMPT_DURATION.buckets, float("inf")]
    assert dict(zip(bounds, found.buckets, strict=True))[0.005] == 1
    assert dict(zip(bounds, found.buckets, strict=True))[0.25] == 3
    assert found.buckets[-2:] == [3, 4]  # 45 s is past the last bound, in +Inf only
    assert found.count == 4
    assert found.sum == pytest.approx(45.403)


def test_nothing_is_counted_before_start_or_with_metrics_off(fake_redis: Redis) -> None:
    metrics.count(metrics.BOT_TURNS, "ok")
    metrics.flush()
    assert fake_redis.hgetall(keys.METRICS) == {}
    metrics.start(fake_redis, Settings(metrics=False))
    metrics.count(metrics.BOT_TURNS, "ok")
    metrics.flush()
    assert fake_redis.hgetall(keys.METRICS) == {}


def test_counts_wait_for_redis_when_it_is_away(caplog: pytest.LogCaptureFixture) -> None:
    server = fakeredis.FakeServer()
    r = cast(Redis, fakeredis.FakeRedis(server=server, decode_responses=True))
    metrics.start(r, Settings())
    try:
        metrics.count(metrics.BOT_TURNS, "ok", n=2)
        server.connected = False
        with caplog.at_level(logging.WARNING, logger=metrics.__name__):
            metrics.flush()
            server.connected = True
            metrics.count(metrics.BOT_TURNS, "ok")
            metrics.flush()
            metrics.count(metrics.BOT_TURNS, "ok")
            metrics.flush()
        assert metrics.read(r).total(metrics.BOT_TURNS) == 4
        said = [line.getMessage() for line in caplog.records]
        assert said[0].startswith("metrics not flushed, trying again: ")
        assert said[1:] == ["Redis reachable again after 0 s"]  # once, not at every flush
    finally:
        metrics.start(r, Settings(metrics=False))


def test_fields_of_unknown_metrics_are_passed_over(recording: Redis) -> None:
    recording.hset(keys.METRICS, mapping={'["gone",[],""]': 3, "not json": 1})
    assert metrics.read(recording).counters == {}


def test_the_known_series_are_those_of_closed_label_sets() -> None:
    assert metrics.known_series(metrics.DELIVERIES, per_channel=True) == [
        ("channel", "delivered"),
        ("channel", "dead"),
        ("offloading", "delivered"),
        ("offloading", "dead"),
    ]
    assert metrics.known_series(metrics.BOT_TURN_DURATION, per_channel=True) == [()]
    # Channel ids are open; without them the channels are "all" and "unknown".
    assert metrics.known_series(metrics.INBOUND_MESSAGES, per_channel=True) == []
    folded = metrics.known_series(metrics.INBOUND_MESSAGES, per_channel=False)
    assert len(folded) == 2 * 7 and {channel for channel, _ in folded} == {"all", "unknown"}
    assert set(metrics.ENDPOINT_KINDS) == set(get_args(EndpointKind))


def test_without_per_channel_series_every_channel_is_all_but_the_unknown_one() -> None:
    assert metrics.channel_label("ch_1", per_channel=True) == "ch_1"
    assert metrics.channel_label("ch_1", per_channel=False) == "all"
    for per_channel in (True, False):
        assert metrics.channel_label("unknown", per_channel=per_channel) == "unknown"


def test_every_inbound_outcome_counted_is_one_of_the_known_ones() -> None:
    from web import inbound_counts

    assert set(inbound_counts._REFUSALS.values()) < set(metrics.INBOUND_OUTCOMES)
    assert {"queued", "duplicate", "invalid", "error"} < set(metrics.INBOUND_OUTCOMES)
