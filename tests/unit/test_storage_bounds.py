"""Storage is bounded: idle conversations expire with everything of theirs,
removing a bot or an endpoint removes what hangs off it (and resumes when cut short), and
`sessionData` has limits per message and per conversation."""

from __future__ import annotations

from typing import Any

import pytest

from broker import bot_removal
from broker.bots import bot_store
from broker.channels import channel_store
from broker.channels.channel import Channel
from broker.conversations import conversation_store, dead_turns, turns
from broker.conversations import scheduler as conversation_scheduler
from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.errors import NotFound, ValidationFailed
from broker.core.settings import Settings
from broker.delivery import endpoint_store, offloading
from broker.delivery import scheduler as delivery_scheduler
from broker.delivery.http_client import AttemptResult
from broker.delivery.records import queue_ref, split_due_member, split_ref
from tests.conversations import new_channel, park_head, user_says
from tests.delivery_work import due_members, work_due, work_queue
from tests.fakes import RecordingSender, ScriptedClient


def _keys_naming(r: Redis, *names: str) -> list[str]:
    return sorted(key for key in r.scan_iter(count=1000) if any(name in key for name in names))


def _busy_bot(r: Redis, settings: Settings) -> tuple[str, list[str]]:
    """A bot with two channels, an offloading integration, answered conversations on both
    channels, and a dead letter of turns; returns its id and its conversation keys."""
    sender = RecordingSender()
    channel = new_channel(r, settings)
    other = channel_store.get(
        r, channel_store.create(r, settings, channel.bot_id, "http://127.0.0.1:9/b")["id"]
    )
    offloading.configure(r, settings, channel.bot_id, "http://127.0.0.1:9/desk", "v" * 16)
    conversation_keys = []
    for on in (channel, other):
        for conversation_id in ("u1", "u2"):
            user_says(r, settings, sender, on, "hi", conversation_id=conversation_id)
            key = ids.conversation_key(on.bot_id, "LIVE", on.id, conversation_id)
            turns.run_pending(r, settings, sender, key)
            conversation_keys.append(key)
    user_says(r, settings, sender, channel, "again", sessionData={"a": 1})
    park_head(r, settings, conversation_keys[0], RuntimeError("boom"))
    assert dead_turns.list_page(r, offset=0, limit=5, bot_id=channel.bot_id)[1] == 1
    return channel.bot_id, conversation_keys


@pytest.fixture(autouse=True)
def _healthy_desk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configuring offloading runs a health check; these tests have no desk to ask."""
    monkeypatch.setattr(offloading, "health_check", lambda *args, **kwargs: None)


def test_removing_a_bot_leaves_nothing_of_it(fake_redis: Redis, settings: Settings) -> None:
    r = fake_redis
    bot_id, conversation_keys = _busy_bot(r, settings)
    assert _keys_naming(r, *conversation_keys)
    bot_removal.remove_bot(r, bot_id)
    assert _keys_naming(r, bot_id, *conversation_keys) == [
        # idempotency keys expire on their own (24 h); nothing else of the bot is left
        key
        for key in _keys_naming(r, *conversation_keys)
        if ":idem:" in key
    ]
    for index in (keys.BOTS, keys.ENDPOINTS, keys.DELIVERIES, keys.TURNS):
        assert not any(
            bot_id in m or m.split("|")[0] in conversation_keys for m in r.zrange(index, 0, -1)
        )
    # Entries on sb:due go when they come due (named by claims, not found by the queue):
    # the queues they name are gone, so a worker finds nothing to send.
    for member in r.zrange(keys.DUE, 0, -1):
        assert not r.exists(keys.fifo(*split_ref(split_due_member(member)[0])))
    assert not r.smembers(keys.REMOVING_BOTS)
    with pytest.raises(NotFound):
        bot_removal.remove_bot(r, bot_id)


def test_a_removal_cut_short_is_finished_by_housekeeping(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = fake_redis
    bot_id, conversation_keys = _busy_bot(r, settings)

    def crash(*args: object) -> None:
        raise ConnectionError("the process died here")

    monkeypatch.setattr(dead_turns, "remove_all", crash)
    with pytest.raises(ConnectionError):
        bot_removal.remove_bot(r, bot_id)
    assert r.sismember(keys.REMOVING_BOTS, bot_id)
    assert not r.smembers(keys.bot_channels(bot_id))  # channels go first: nothing comes in
    monkeypatch.undo()
    monkeypatch.setattr(offloading, "health_check", lambda *args, **kwargs: None)
    bot_removal.resume_removals(r)
    assert [k for k in _keys_naming(r, bot_id, *conversation_keys) if ":idem:" not in k] == []
    assert not r.smembers(keys.REMOVING_BOTS)


def test_removing_an_endpoint_removes_its_deliveries_and_index(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, "hi")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    turns.run_pending(r, settings, sender, key)
    (delivery_id,) = r.zrange(keys.endpoint_deliveries(channel.id), 0, -1)
    r.sadd(keys.endpoint_parked(channel.id), "a queue")
    channel_store.delete(r, channel.bot_id, channel.id)
    assert _keys_naming(r, f"{{e:{channel.id}}}") == []
    assert not r.exists(keys.delivery(key, delivery_id))
    assert r.zscore(keys.DELIVERIES, delivery_id) is None
    assert not r.smembers(keys.REMOVING_ENDPOINTS)


def test_an_endpoint_removal_cut_short_is_finished_by_housekeeping(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, "hi")
    turns.run_pending(
        r, settings, sender, ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    )
    r.sadd(keys.REMOVING_ENDPOINTS, channel.id)  # as a removal that died after its first step
    delivery_scheduler.housekeep(r, settings)
    assert _keys_naming(r, f"{{e:{channel.id}}}") == []
    assert not r.smembers(keys.REMOVING_ENDPOINTS)


def test_a_conversation_s_keys_expire_after_it_is_idle(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    settings = settings.with_changes(conversation_ttl=3600.0)
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, "hi", sessionData={"email": "a@b.c"})
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    for name in (
        keys.conversation_meta(key),
        keys.conversation_inbox(key),
        keys.conversation_data_sizes(key),
    ):
        assert 0 < r.ttl(name) <= 3600
    user_says(r, settings, sender, channel, "again")
    turns.run_pending(r, settings, sender, key)
    for name in (
        keys.conversation_meta(key),
        keys.conversation_transcript(key),
        keys.conversation_data_sizes(key),
    ):
        assert 0 < r.ttl(name) <= 3600, name


def test_housekeeping_drops_index_entries_of_idle_conversations(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, "hi", conversation_id="old")
    user_says(r, settings, sender, channel, "hi", conversation_id="new")
    index = keys.bot_conversations(channel.bot_id, "LIVE")
    old = f"{channel.id}|old"
    r.zadd(index, {old: clock.now_ms() - settings.conversation_ttl * 1000 - 1})
    r.zadd(keys.bot_paused(channel.bot_id, "LIVE"), {old: 1})
    conversation_scheduler.housekeep(r, settings)
    assert r.zrange(index, 0, -1) == [f"{channel.id}|new"]
    assert r.zcard(keys.bot_paused(channel.bot_id, "LIVE")) == 0


def test_session_data_is_limited_per_message(fake_redis: Redis, settings: Settings) -> None:
    r, sender = fake_redis, RecordingSender()
    settings = settings.with_changes(session_data_keys=2, session_data_bytes=40)
    channel = new_channel(r, settings)
    with pytest.raises(ValidationFailed, match="3 keys") as many:
        user_says(r, settings, sender, channel, "hi", sessionData={"a": 1, "b": 2, "c": 3})
    assert many.value.field == "sessionData"
    with pytest.raises(ValidationFailed, match="bytes"):
        user_says(r, settings, sender, channel, "hi", sessionData={"a": "x" * 40})
    assert user_says(r, settings, sender, channel, "hi", sessionData={"a": "é" * 10}).queued
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    assert r.llen(keys.conversation_inbox(key)) == 1


def test_session_data_is_limited_per_conversation(fake_redis: Redis, settings: Settings) -> None:
    r, sender = fake_redis, RecordingSender()
    settings = settings.with_changes(conversation_data_keys=3, conversation_data_bytes=100)
    channel = new_channel(r, settings)
    for name in ("a", "b", "c", "a", "b"):  # setting a key again does not add one
        assert user_says(r, settings, sender, channel, "hi", sessionData={name: 1}).queued
    with pytest.raises(ValidationFailed, match="4 keys") as refused:
        user_says(r, settings, sender, channel, "hi", sessionData={"d": 1})
    assert refused.value.field == "sessionData"
    with pytest.raises(ValidationFailed, match="bytes"):
        user_says(r, settings, sender, channel, "hi", sessionData={"a": "x" * 100})
    other = user_says(
        r, settings, sender, channel, "hi", conversation_id="u2", sessionData={"d": 1}
    )
    assert other.queued  # the limits are each conversation's own
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    assert r.llen(keys.conversation_inbox(key)) == 5
    turns.run_pending(r, settings, sender, key)
    conversation = conversation_store.find(r, channel.bot_id, "LIVE", "u1")
    conversation_store.forget_variables(r, settings, sender, conversation)
    assert user_says(r, settings, sender, channel, "hi", sessionData={"d": 1, "e": 2}).queued


def _answered_once(r: Redis, settings: Settings, sender: RecordingSender) -> tuple[Channel, str]:
    """A channel whose conversation u1 had its first turn; the channel and u1's key."""
    channel = new_channel(r, settings)
    assert user_says(r, settings, sender, channel, "hi").queued
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    turns.run_pending(r, settings, sender, key)
    return channel, key


def test_forgetting_the_variables_still_counts_what_waiting_messages_set(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    settings = settings.with_changes(conversation_data_keys=3, conversation_data_bytes=100)
    channel, key = _answered_once(r, settings, sender)
    # Acknowledged, waiting for their turn: they set a, b and c when it comes.
    for name in ("a", "b", "c"):
        assert user_says(r, settings, sender, channel, "hi", sessionData={name: 1}).queued
    conversation = conversation_store.find(r, channel.bot_id, "LIVE", "u1")
    conversation_store.forget_variables(r, settings, sender, conversation)
    with pytest.raises(ValidationFailed, match="4 keys"):
        user_says(r, settings, sender, channel, "hi", sessionData={"d": 1})
    assert user_says(r, settings, sender, channel, "hi", sessionData={"a": 2}).queued
    turns.run_pending(r, settings, sender, key)
    variables = conversation_store.variables(r, conversation)["sessionData"]
    assert {k: variables[k] for k in "abc"} == {"a": 2, "b": 1, "c": 1}


def test_forgetting_the_variables_still_counts_what_parked_messages_set(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    settings = settings.with_changes(conversation_data_keys=3, conversation_data_bytes=100)
    channel, key = _answered_once(r, settings, sender)
    assert user_says(r, settings, sender, channel, "hi", sessionData={"a": 1, "b": 2}).queued
    park_head(r, settings, key, RuntimeError("the bot failed"))  # a replay brings it back
    conversation = conversation_store.find(r, channel.bot_id, "LIVE", "u1")
    conversation_store.forget_variables(r, settings, sender, conversation)
    assert user_says(r, settings, sender, channel, "hi", sessionData={"c": 1}).queued
    with pytest.raises(ValidationFailed, match="4 keys"):
        user_says(r, settings, sender, channel, "hi", sessionData={"d": 1})


def test_a_bot_that_is_gone_is_not_found(fake_redis: Redis) -> None:
    with pytest.raises(NotFound):
        bot_removal.remove_bot(fake_redis, "bot_none")
    assert not bot_store.exists(fake_redis, "bot_none")
    assert endpoint_store.list_ids(fake_redis, 0, 10)[1] == 0


def test_a_refused_message_leaves_no_index_entry_for_a_conversation_it_would_start(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    settings = settings.with_changes(session_data_keys=5, conversation_data_keys=2)
    channel = new_channel(r, settings)
    with pytest.raises(ValidationFailed):
        user_says(
            r,
            settings,
            sender,
            channel,
            "hi",
            conversation_id="new",
            sessionData=dict.fromkeys("abc", 1),
        )
    assert r.zcard(keys.bot_conversations(channel.bot_id, "LIVE")) == 0
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "new")
    assert not r.exists(keys.conversation_inbox(key), keys.conversation_meta(key))
    assert sender.turns == []


def _handing_over(r: Redis, settings: Settings, conversations: int) -> tuple[Channel, list[str]]:
    """A channel of a bot with an offloading integration, and conversations answered on it:
    each has its reply queued for the channel and a `messages` event for the desk, and no
    worker takes them. Returns the channel and the conversations' keys."""
    sender = RecordingSender()
    channel = new_channel(r, settings)
    offloading.configure(r, settings, channel.bot_id, "http://127.0.0.1:9/desk", "v" * 16)
    conversation_keys = []
    for n in range(conversations):
        user_says(r, settings, sender, channel, "hi", conversation_id=f"u{n}")
        key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, f"u{n}")
        turns.run_pending(r, settings, sender, key)
        conversation_keys.append(key)
    desk = offloading.endpoint_id(channel.bot_id)
    assert all(r.llen(keys.fifo(key, desk)) for key in conversation_keys)
    return channel, conversation_keys


def test_removing_a_channel_removes_what_its_conversations_queued_for_the_desk(
    fake_redis: Redis, settings: Settings
) -> None:
    r = fake_redis
    channel, conversation_keys = _handing_over(r, settings, 3)
    desk = offloading.endpoint_id(channel.bot_id)
    queued = r.zrange(keys.endpoint_deliveries(desk), 0, -1)
    assert len(queued) == 3

    bot_removal.remove_channel(r, channel.bot_id, channel.id)

    assert [k for k in _keys_naming(r, *conversation_keys) if ":idem:" not in k] == []
    for index in (keys.DELIVERIES, keys.endpoint_deliveries(desk)):
        assert not set(r.zrange(index, 0, -1)) & set(queued)
    assert endpoint_store.load(r, desk)  # the bot's desk stays
    assert not r.hgetall(keys.REMOVING_CHANNELS)


def test_a_conversation_removed_while_its_queue_is_worked_leaves_nothing(
    fake_redis: Redis, settings: Settings
) -> None:
    r = fake_redis
    channel, (key,) = _handing_over(r, settings, 1)
    desk_queue = queue_ref(key, offloading.endpoint_id(channel.bot_id))

    class RemovedMeanwhile(ScriptedClient):
        """The channel goes while the desk's event is being sent, which then fails."""

        async def post(self, *args: Any, **kwargs: Any) -> AttemptResult:
            bot_removal.remove_channel(r, channel.bot_id, channel.id)
            await super().post(*args, **kwargs)
            return AttemptResult(500, 3)

    assert work_queue(r, settings, RemovedMeanwhile(), desk_queue).attempts == 1
    # A retry would have brought the record back, with no expiry: nothing was recorded.
    assert [k for k in _keys_naming(r, key) if ":idem:" not in k] == []
    # What the turn put on sb:due finds the queues empty, and goes.
    work_due(r, settings, ScriptedClient())
    assert due_members(r) == {}
    assert [k for k in _keys_naming(r, key) if ":idem:" not in k] == []


def test_a_bot_removal_cut_short_after_a_channel_went_is_finished(
    fake_redis: Redis, settings: Settings
) -> None:
    r = fake_redis
    bot_id, conversation_keys = _busy_bot(r, settings)
    # As a removal that died in its first channel's removal, the record gone.
    r.sadd(keys.REMOVING_BOTS, bot_id)
    first = sorted(r.smembers(keys.bot_channels(bot_id)))[0]
    r.delete(keys.channel(first))

    bot_removal.resume_removals(r)

    assert [k for k in _keys_naming(r, bot_id, *conversation_keys) if ":idem:" not in k] == []
    assert not r.smembers(keys.REMOVING_BOTS)
    assert not r.exists(keys.endpoint(first))


def test_deleting_a_bot_again_finishes_its_removal_cut_short(
    fake_redis: Redis, settings: Settings
) -> None:
    r = fake_redis
    bot_id, conversation_keys = _busy_bot(r, settings)
    r.sadd(keys.REMOVING_BOTS, bot_id)
    for channel_id in r.smembers(keys.bot_channels(bot_id)):
        r.delete(keys.channel(channel_id))

    bot_removal.remove_bot(r, bot_id)

    assert [k for k in _keys_naming(r, bot_id, *conversation_keys) if ":idem:" not in k] == []


def test_a_removal_that_fails_does_not_hold_up_the_others(
    fake_redis: Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = fake_redis
    stuck, _ = _busy_bot(r, settings)
    other, other_keys = _busy_bot(r, settings)
    r.sadd(keys.REMOVING_BOTS, stuck, other)
    delete = bot_store.delete

    def fails_for_one(client: Redis, bot_id: str) -> None:
        if bot_id == stuck:
            raise RuntimeError("a bug")
        delete(client, bot_id)

    monkeypatch.setattr(bot_store, "delete", fails_for_one)
    bot_removal.resume_removals(r)

    assert r.smembers(keys.REMOVING_BOTS) == {stuck}
    assert [k for k in _keys_naming(r, other, *other_keys) if ":idem:" not in k] == []
    assert f"bot {stuck}" in caplog.text and "a bug" in caplog.text


def test_a_channel_removal_cut_short_is_finished_by_housekeeping(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = fake_redis
    channel, conversation_keys = _handing_over(r, settings, 2)

    def crash(*args: object) -> None:
        raise ConnectionError("the process died here")

    monkeypatch.setattr(conversation_store, "remove_of_channel", crash)
    with pytest.raises(ConnectionError):
        bot_removal.remove_channel(r, channel.bot_id, channel.id)
    monkeypatch.undo()
    assert r.hgetall(keys.REMOVING_CHANNELS) == {channel.id: channel.bot_id}
    assert not r.exists(keys.channel(channel.id))

    bot_removal.resume_removals(r)

    assert [k for k in _keys_naming(r, *conversation_keys) if ":idem:" not in k] == []
    assert conversation_store.list_page(r, channel.bot_id, "LIVE", 0, 10).total == 0
    assert not r.hgetall(keys.REMOVING_CHANNELS)


def test_removing_a_channel_again_finishes_its_removal_cut_short(
    fake_redis: Redis, settings: Settings
) -> None:
    r = fake_redis
    channel, conversation_keys = _handing_over(r, settings, 1)
    r.hset(keys.REMOVING_CHANNELS, channel.id, channel.bot_id)
    channel_store.delete(r, channel.bot_id, channel.id)

    bot_removal.remove_channel(r, channel.bot_id, channel.id)

    assert [k for k in _keys_naming(r, *conversation_keys) if ":idem:" not in k] == []
    with pytest.raises(NotFound):
        bot_removal.remove_channel(r, channel.bot_id, channel.id)
    other = new_channel(r, settings)
    with pytest.raises(NotFound, match="has no channel"):
        bot_removal.remove_channel(r, channel.bot_id, other.id)
    assert r.exists(keys.channel(other.id))
