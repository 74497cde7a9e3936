"""Keys that one script touches share a hash slot, as Redis Cluster requires."""

from __future__ import annotations

import pytest

from broker.core import keys, scripts
from broker.core.connection import Redis, connect_async, index_shards
from broker.core.defaults import CLUSTER_INDEX_SHARDS


def test_a_conversation_s_keys_share_one_slot() -> None:
    conversation = "0123456789abcdef0123"
    together = [
        keys.conversation_meta(conversation),
        keys.conversation_inbox(conversation),
        keys.conversation_pending(conversation),
        keys.conversation_signals(conversation),
        keys.conversation_lock(conversation),
        keys.conversation_transcript(conversation),
        keys.idempotency(conversation, "k"),
        keys.fifo(conversation, "ch_1"),
        keys.fifo_lock(conversation, "ch_1"),
        keys.delivery(conversation, "msg_1"),
        keys.delivery_attempts(conversation, "msg_1"),
        keys.conversation_data_sizes(conversation),
        keys.dead_turn(conversation, "dturn_1"),
        *keys.conversation_keys(conversation),
    ]
    assert len(scripts.slots(together)) == 1


def test_an_endpoint_s_and_a_bot_s_keys_each_share_one_slot() -> None:
    endpoint = [
        keys.endpoint("ch_1"),
        keys.endpoint_health("ch_1"),
        keys.endpoint_recent("ch_1"),
        keys.endpoint_parked("ch_1"),
        keys.endpoint_deliveries("ch_1"),
    ]
    bot = [
        keys.bot("bot_1"),
        keys.bot_channels("bot_1"),
        keys.bot_api_tokens("bot_1"),
        keys.bot_offloading("bot_1"),
        keys.bot_conversations("bot_1", "LIVE"),
        keys.bot_paused("bot_1", "DRAFT"),
        keys.bot_dead_turns("bot_1"),
    ]
    assert len(scripts.slots(endpoint)) == 1
    assert len(scripts.slots(bot)) == 1


def test_a_script_whose_keys_span_two_slots_fails_the_check(fake_redis: Redis) -> None:
    spread = [keys.conversation_inbox("a" * 20), keys.conversation_inbox("b" * 20)]
    assert len(scripts.slots(spread)) == 2
    with pytest.raises(AssertionError, match="keys in several slots"):
        scripts.run(fake_redis, "turn_finish", spread, [])


def test_one_redis_has_one_shard_of_each_schedule_under_its_plain_name() -> None:
    assert keys.due("0123456789abcdef0123|ch_1#t", 1) == keys.DUE
    assert keys.turns("0123456789abcdef0123", 1) == keys.TURNS
    assert keys.shards(keys.DUE, 1) == [keys.DUE]


def test_a_cluster_s_schedules_spread_over_shards_in_many_slots() -> None:
    conversations = [f"{n:020x}" for n in range(200)]
    shards = keys.shards(keys.DUE, CLUSTER_INDEX_SHARDS)
    assert {keys.due(f"{c}|ch_1#t", CLUSTER_INDEX_SHARDS) for c in conversations} == set(shards)
    assert len(scripts.slots(shards)) == CLUSTER_INDEX_SHARDS
    # A conversation's queue and its turn are in the same-numbered shard, whatever the suffix.
    for c in conversations[:20]:
        due = keys.due(f"{c}|ch_1#token", CLUSTER_INDEX_SHARDS)
        assert due == keys.due(c, CLUSTER_INDEX_SHARDS) == keys.due(f"{c}|other", 16)
        assert due.rsplit(":", 1)[1] == keys.turns(c, CLUSTER_INDEX_SHARDS).rsplit(":", 1)[1]


def test_members_are_grouped_by_the_shard_they_belong_to() -> None:
    members = [f"{n:020x}|ch_1#t" for n in range(50)]
    grouped = keys.by_shard(keys.DUE, members, 4)
    assert sorted(m for group in grouped.values() for m in group) == sorted(members)
    assert all(keys.due(m, 4) == shard for shard, group in grouped.items() for m in group)
    assert keys.by_shard(keys.DUE, members, 1) == {keys.DUE: members}


def test_the_shard_count_follows_the_client(fake_redis: Redis) -> None:
    assert index_shards(fake_redis) == 1
    assert index_shards(fake_redis.pipeline()) == 1
    # The asyncio client connects when first used (the other, when made).
    assert index_shards(connect_async("redis+cluster://127.0.0.1:1/0")) == CLUSTER_INDEX_SHARDS


def test_only_the_scheduler_s_indexes_are_sharded() -> None:
    member = f"{7:020x}|offload"
    assert keys.shard_of(keys.TIMERS, member, 16) == keys.turns(f"{7:020x}", 16).replace(
        keys.TURNS, keys.TIMERS
    )
    assert keys.shard_of(keys.DEAD, member, 16) == keys.DEAD
    assert keys.shard_of(keys.TIMERS, member, 1) == keys.TIMERS
