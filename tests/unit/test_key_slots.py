"""Keys that one script touches share a hash slot, as Redis Cluster requires."""

from __future__ import annotations

import pytest

from broker.core import keys, scripts
from broker.core.connection import Redis


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
