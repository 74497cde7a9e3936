"""The operators' overview, read from the indexes only (`broker.overview`), and the heartbeat
index it names the live processes from."""

from __future__ import annotations

import pytest

from broker import overview
from broker.conversations import turns
from broker.core import clock, heartbeats, keys
from broker.core.connection import Redis, index_shards
from broker.core.settings import Settings
from broker.delivery import endpoint_store, health, offloading
from broker.delivery.endpoint import Endpoint
from broker.delivery.http_client import AttemptResult
from broker.delivery.records import due_member
from tests.conversations import new_channel, user_says
from tests.delivery_work import work_queue
from tests.fakes import RecordingSender, ScriptedClient
from tests.unit.test_delivery_core import EP, fan_out
from tests.unit.test_delivery_core import r as r  # the fixture: Redis with the endpoint EP


def test_an_empty_deployment_has_nothing_waiting(fake_redis: Redis) -> None:
    found = overview.take(fake_redis)
    assert found.queues == dict.fromkeys(overview.QUEUES, 0)
    assert found.oldest_age == {"inbound": 0.0, "deliveries": 0.0}
    assert found.endpoints == dict.fromkeys(overview.ENDPOINT_STATES, 0)
    assert (found.paused_conversations, found.workers, found.schedulers) == (0, [], [])
    # fakeredis, as a Redis whose INFO is renamed away, does not say its memory.
    assert found.redis_memory is None and found.as_json()["redisMemory"] is None
    assert found.redis_memory_text() == "unknown (Redis does not answer INFO)"


@pytest.mark.parametrize(
    ("memory", "said"),
    [
        ((980, 0), "980 B (no maxmemory set)"),
        ((3 * 2**20 + 2**19, 2**30), "3.5 MB of 1.0 GB (0%)"),
        ((15 * 2**30, 16 * 2**30), "15.0 GB of 16.0 GB (94%)"),
    ],
)
def test_redis_memory_in_words(memory: tuple[int, int], said: str) -> None:
    found = overview.Overview(0.0, {}, {}, 0, redis_memory=memory)
    assert found.redis_memory_text() == said


def test_messages_waiting_for_bot_turns_are_counted_with_their_age(
    fake_redis: Redis, settings: Settings
) -> None:
    channel = new_channel(fake_redis, settings)
    sender = RecordingSender()
    for text in ("a", "b", "c"):
        user_says(fake_redis, settings, sender, channel, text, conversation_id="u1")
    user_says(fake_redis, settings, sender, channel, "d", conversation_id="u2")
    found = overview.take(fake_redis)
    assert (found.queues["inbound"], found.queues["bot_turns"]) == (4, 2)
    assert 0 <= found.oldest_age["inbound"] < 5


def test_messages_waiting_for_an_offload_s_answer_are_counted_without_an_age(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(offloading, "health_check", lambda *args: None)
    channel = new_channel(fake_redis, settings)
    sender = RecordingSender()
    user_says(fake_redis, settings, sender, channel, "human", conversation_id="u1")
    conversation_key = sender.turns[-1]
    offloading.configure(fake_redis, settings, channel.bot_id, "http://127.0.0.1:9/desk", "vt")
    turns.run_pending(fake_redis, settings, sender, conversation_key)  # the offload goes out
    for text in ("still", "there?"):
        user_says(fake_redis, settings, sender, channel, text, conversation_id="u1")
    turns.run_pending(fake_redis, settings, sender, conversation_key)  # they wait

    found = overview.take(fake_redis)
    assert (found.queues["inbound"], found.queues["bot_turns"]) == (2, 0)
    assert found.oldest_age["inbound"] == 0.0


def test_deliveries_waiting_retrying_parked_and_dead_are_told_apart(
    r: Redis, settings: Settings
) -> None:
    fan_out(r, settings, "c" * 20, ["one", "two"])  # ready: its head is due now
    fan_out(r, settings, "d" * 20, ["three"])
    work_queue(
        r, settings, ScriptedClient(AttemptResult(503, 5)), f"{'d' * 20}|{EP}"
    )  # its head failed: it waits for a retry
    found = overview.take(r)
    assert found.queues["deliveries"] == 3
    assert found.queues["retries"] == 1
    assert found.oldest_age["deliveries"] >= clock.now() - 1000.0 - 1  # fan_out's created_at
    health.disable(r, EP)
    work_queue(r, settings, ScriptedClient(), f"{'c' * 20}|{EP}")  # parked: nothing is sent
    found = overview.take(r)
    assert (found.queues["deliveries"], found.queues["parked"]) == (3, 2)
    assert found.endpoints["disabled"] == 1
    r.zadd(keys.DEAD, {"msg_x": 1})
    assert overview.take(r).queues["dead_letters"] == 1


def test_endpoints_are_counted_by_state(r: Redis, settings: Settings) -> None:
    for endpoint_id in ("ep_a", "ep_b"):
        endpoint_store.save(
            r, Endpoint(id=endpoint_id, kind="channel", bot_id="b", url="http://x/", secret="s")
        )
    r.hset(keys.endpoint_health("ep_a"), mapping={"state": "failing"})
    r.hset(
        keys.endpoint_health("ep_b"),
        mapping={"state": "circuit_open", "circuitOpenUntil": clock.now() + 60},
    )
    assert overview.take(r).endpoints == {
        "healthy": 1,
        "failing": 1,
        "circuit_open": 1,
        "disabled": 0,
    }


def test_paused_conversations_are_counted_over_every_bot(
    fake_redis: Redis, settings: Settings
) -> None:
    channel = new_channel(fake_redis, settings)
    accepted = user_says(fake_redis, settings, RecordingSender(), channel, "hi")
    fake_redis.zadd(keys.bot_paused(channel.bot_id, channel.version), {accepted.conversation_id: 1})
    other = new_channel(fake_redis, settings)
    fake_redis.zadd(keys.bot_paused(other.bot_id, "DRAFT"), {"x": 1, "y": 2})
    assert overview.take(fake_redis).paused_conversations == 3


def test_heartbeats_name_the_live_processes_and_forget_the_silent_ones(fake_redis: Redis) -> None:
    heartbeats.beat(fake_redis, "worker", "host:1")
    heartbeats.beat(fake_redis, "worker", "host:2")
    heartbeats.beat(fake_redis, "scheduler", "host:3")
    assert heartbeats.alive(fake_redis, "worker") == 2
    assert [b.name for b in overview.take(fake_redis).schedulers] == ["host:3"]
    # A minute of silence, at Redis's time (which the beats are scored by).
    index = keys.heartbeats("worker")
    fake_redis.zadd(
        index,
        {name: score - 60 for name, score in fake_redis.zrange(index, 0, -1, withscores=True)},
    )
    assert heartbeats.alive(fake_redis, "worker") == 0
    heartbeats.beat(fake_redis, "worker", "host:2")
    assert [b.name for b in heartbeats.live(fake_redis, "worker")] == ["host:2"]
    assert fake_redis.zcard(keys.heartbeats("worker")) == 1  # the silent one is dropped
    heartbeats.stop(fake_redis, "worker", "host:2")
    assert heartbeats.alive(fake_redis, "worker") == 0


def test_the_overview_never_scans_the_keyspace(
    r: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = new_channel(r, settings)
    user_says(r, settings, RecordingSender(), channel, "hi")
    fan_out(r, settings, "c" * 20, ["one"])

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the overview scanned the keyspace")

    for name in ("scan", "scan_iter", "keys"):
        monkeypatch.setattr(type(r), name, refused)
    assert overview.take(r).queues["deliveries"] == 1


def test_a_queue_held_by_an_open_circuit_is_not_counted_as_ready_work(
    r: Redis, settings: Settings
) -> None:
    fan_out(r, settings, "c" * 20, ["one"])
    assert overview.take(r).oldest_age["deliveries"] > 0
    r.hset(
        keys.endpoint_health(EP),
        mapping={"state": "circuit_open", "circuitOpenUntil": clock.now() + 60},
    )
    found = overview.take(r)
    assert (found.queues["deliveries"], found.queues["retries"]) == (1, 1)
    assert found.oldest_age["deliveries"] == 0.0


def test_a_queue_with_two_entries_chunks_apart_is_counted_once(
    r: Redis, settings: Settings
) -> None:
    fan_out(r, settings, "c" * 20, ["one", "two"])
    ref = f"{'c' * 20}|{EP}"
    due = keys.due(ref, index_shards(r))
    ((_, score),) = r.zrange(due, 0, -1, withscores=True)
    # The next claim's entry, with more than a chunk of other queues' entries between.
    others = [due_member(f"{n:020d}|{EP}", "t") for n in range(overview._CHUNK + 5)]
    r.zadd(due, dict.fromkeys(others, score + 1))
    r.zadd(due, {due_member(ref, "next"): score + 2})
    assert r.zcard(due) > overview._CHUNK + 2
    found = overview.take(r)
    assert found.queues["deliveries"] == 2
    r.hset(
        keys.endpoint_health(EP),
        mapping={"state": "circuit_open", "circuitOpenUntil": clock.now() + 60},
    )
    assert overview.take(r).queues["retries"] == 1
