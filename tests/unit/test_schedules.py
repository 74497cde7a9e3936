"""The scheduler takes due work off every shard of a schedule at once. One shard that fails
(its node is down, on a Redis Cluster) loses nothing the others took: it is handed out
before the pass says it failed. Raised at once, the others' work waited out the lease it
had just been given (40 s for a delivery queue)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from redis.exceptions import ResponseError

from broker.conversations import scheduler as conversation_scheduler
from broker.core import keys, schedules
from broker.core.connection import Redis
from broker.core.settings import Settings
from broker.delivery import scheduler as delivery_scheduler
from broker.delivery.records import split_due_member
from tests.fakes import RecordingSender


def two_shards_the_second_failing(r: Redis, index: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`index` in two shards, as on a cluster; the second fails every command (a string where
    a sorted set should be stands for a node that is down)."""
    for module in (schedules, delivery_scheduler):
        monkeypatch.setattr(module, "index_shards", lambda _client: 2)
    r.set(f"{index}:1", "not a sorted set")


def test_what_the_other_shards_took_comes_back_with_the_failure(fake_redis: Redis) -> None:
    fake_redis.zadd("due:a", {"one": 1, "two": 2})
    fake_redis.set("due:b", "not a sorted set")
    taken = schedules.take_due(fake_redis, "claim_due", ["due:a", "due:b"], [10, 40, 100])
    assert taken.by_shard == [["one", "two"], []]
    assert isinstance(taken.error, ResponseError)
    with pytest.raises(ResponseError):
        taken.raise_error()


HandOut = Callable[[Redis, Settings, RecordingSender], int]


@pytest.mark.parametrize(
    ("index", "member", "hand_out", "handed"),
    [
        (
            keys.DUE,
            "conv|ch_1#old",
            delivery_scheduler.hand_out_queues,
            lambda sender: [split_due_member(member)[0] for member in sender.deliveries],
        ),
        (keys.TURNS, "conv", conversation_scheduler.hand_out_turns, lambda sender: sender.turns),
    ],
    ids=["delivery queues", "turns"],
)
def test_due_work_is_handed_out_though_a_shard_failed(
    fake_redis: Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    index: str,
    member: str,
    hand_out: HandOut,
    handed: Callable[[RecordingSender], list[str]],
) -> None:
    two_shards_the_second_failing(fake_redis, index, monkeypatch)
    fake_redis.zadd(f"{index}:0", {member: time.time() - 1})
    sender = RecordingSender()
    with pytest.raises(ResponseError):
        hand_out(fake_redis, settings, sender)
    assert handed(sender) == [member.partition("#")[0]]


def test_a_redis_that_lost_its_scripts_is_taken_from_once(fake_redis: Redis) -> None:
    fake_redis.zadd("due:a", {"one": 1})
    fake_redis.zadd("due:b", {"two": 2})
    fake_redis.script_flush()
    taken = schedules.take_due(fake_redis, "claim_due", ["due:a", "due:b"], [10, 40, 100])
    assert taken.by_shard == [["one"], ["two"]] and taken.error is None
    assert fake_redis.zscore("due:a", "one") == 40
