"""Listings of a bot version's conversations by channel, on fakeredis: the channel matched
exactly, and a listing that could not look at every conversation says so."""

from __future__ import annotations

import pytest

from broker.channels import channel_store
from broker.channels.channel import Channel
from broker.conversations import conversation_store
from broker.conversations.conversation import index_member
from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.settings import Settings
from tests.conversations import NOWHERE, new_channel, pause, user_says
from tests.fakes import RecordingSender


@pytest.fixture(autouse=True)
def scan_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A smaller scan than a deployment's, to fill the index past it quickly."""
    monkeypatch.setattr(conversation_store, "SCAN_LIMIT", 2_000)


@pytest.fixture
def channels(fake_redis: Redis, settings: Settings) -> tuple[Channel, Channel]:
    """Two channels of one bot."""
    first = new_channel(fake_redis, settings)
    created = channel_store.create(fake_redis, settings, first.bot_id, NOWHERE)
    return first, channel_store.get(fake_redis, created["id"])


def _busy_neighbour(r: Redis, channel: Channel, count: int) -> None:
    """`count` conversations on `channel`, each more recently active than any before."""
    newer = clock.now_ms() + 1000
    r.zadd(
        keys.bot_conversations(channel.bot_id, "LIVE"),
        {index_member(channel.id, f"n{i}"): newer + i for i in range(count)},
    )


def test_a_channel_behind_the_scan_limit_is_listed_as_cut_short(
    fake_redis: Redis, settings: Settings, channels: tuple[Channel, Channel]
) -> None:
    r, (quiet, busy) = fake_redis, channels
    for user in ("u1", "u2", "u3"):
        user_says(r, settings, RecordingSender(), quiet, "hi", conversation_id=user)
    pause(r, ids.conversation_key(quiet.bot_id, "LIVE", quiet.id, "u2"))
    _busy_neighbour(r, busy, conversation_store.SCAN_LIMIT + 100)

    def listed(channel: Channel, paused: bool | None = None) -> conversation_store.ConversationPage:
        return conversation_store.list_page(
            r, quiet.bot_id, "LIVE", 0, 10, paused=paused, channel_id=channel.id
        )

    assert listed(quiet) == ([], 0, True)
    assert listed(quiet, paused=False) == ([], 0, True)
    assert listed(busy).total == conversation_store.SCAN_LIMIT
    assert listed(busy).scan_limited
    # The paused ones are looked up by the paused index: found however far behind.
    paused = listed(quiet, paused=True)
    assert [item["sessionId"] for item in paused.items] == ["u2"]
    assert (paused.total, paused.scan_limited) == (1, False)


def test_a_listing_that_read_every_conversation_is_not_cut_short(
    fake_redis: Redis, settings: Settings, channels: tuple[Channel, Channel]
) -> None:
    r, (quiet, busy) = fake_redis, channels
    user_says(r, settings, RecordingSender(), quiet, "hi")
    _busy_neighbour(r, busy, conversation_store.SCAN_LIMIT - 1)

    page = conversation_store.list_page(r, quiet.bot_id, "LIVE", 0, 10, channel_id=quiet.id)
    assert [item["sessionId"] for item in page.items] == ["u1"]
    assert (page.total, page.scan_limited) == (1, False)


def test_the_channel_is_matched_exactly(
    fake_redis: Redis, settings: Settings, channels: tuple[Channel, Channel]
) -> None:
    r, (channel, _) = fake_redis, channels
    user_says(r, settings, RecordingSender(), channel, "hi", conversation_id="a|b")

    def listed(channel_id: str) -> conversation_store.ConversationPage:
        return conversation_store.list_page(r, channel.bot_id, "LIVE", 0, 10, channel_id=channel_id)

    assert [item["sessionId"] for item in listed(channel.id).items] == ["a|b"]
    for not_a_channel in (f"{channel.id}|a", f"{channel.id}|", channel.id[:-1]):
        assert listed(not_a_channel) == ([], 0, False)
    pause(r, ids.conversation_key(channel.bot_id, "LIVE", channel.id, "a|b"))
    page = conversation_store.list_page(
        r, channel.bot_id, "LIVE", 0, 10, paused=True, channel_id=f"{channel.id}|a"
    )
    assert page == ([], 0, False)
