"""The channels a web process keeps (`broker/channels/channel_cache.py`)."""

from __future__ import annotations

from broker.channels.channel import Channel
from broker.channels.channel_cache import ChannelCache
from broker.core import ids


def _channel(channel_id: str, token: str = "sbat_right") -> Channel:
    return Channel(channel_id, "bot_1", "LIVE", "verify-token-long", ids.token_hash(token), 0.0)


def test_a_kept_channel_is_found_with_its_access_token_only() -> None:
    cache = ChannelCache()
    cache.keep(_channel("ch_1"), "generation-1")
    found = cache.get("ch_1", "sbat_right")
    assert found is not None and found.generation == "generation-1"
    assert cache.get("ch_1", "sbat_wrong") is None
    assert cache.get("ch_1", None) is None
    assert cache.get("ch_2", "sbat_right") is None


def test_without_a_generation_nothing_is_kept() -> None:
    cache = ChannelCache()
    cache.keep(_channel("ch_1"), None)
    assert cache.get("ch_1", "sbat_right") is None


def test_the_cache_is_bounded_and_forgets_the_oldest_first() -> None:
    cache = ChannelCache(size=2)
    for name in ("ch_1", "ch_2", "ch_3"):
        cache.keep(_channel(name), "g")
    assert cache.get("ch_1", "sbat_right") is None
    assert cache.get("ch_2", "sbat_right") is not None
    assert cache.get("ch_3", "sbat_right") is not None
    cache.keep(_channel("ch_3"), "g2")  # kept again: nothing else goes
    assert cache.get("ch_2", "sbat_right") is not None
    cache.forget("ch_2")
    assert cache.get("ch_2", "sbat_right") is None
