"""The channels a web process authenticated lately, each with the settings generation
(`broker.core.generation`) it was read at.

A message of a channel found here needs one round trip to Redis instead of two: the
ingress script checks that the generation is still the one read (no channel or bot
changed since) and that the failed-authentication counters allow the request, before it
queues anything (`broker.conversations.ingress`). Those keys are in other hash slots than
the conversation's, so a Redis Cluster does without the cache.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from broker.channels.channel import Channel
from broker.core import ids
from broker.core.defaults import CHANNEL_CACHE_SIZE


@dataclass(frozen=True)
class KnownChannel:
    channel: Channel
    #: The settings generation when the channel was read.
    generation: str


class ChannelCache:
    def __init__(self, size: int = CHANNEL_CACHE_SIZE) -> None:
        self._size = size
        self._known: dict[str, KnownChannel] = {}

    def get(self, channel_id: str, token: str | None) -> KnownChannel | None:
        """The channel as it was read, if it is known here and `token` is its access token."""
        known = self._known.get(channel_id)
        if known is None or token is None:
            return None
        if not hmac.compare_digest(known.channel.access_token_hash, ids.token_hash(token)):
            return None
        return known

    def keep(self, channel: Channel, generation: str | None) -> None:
        """Keep a channel just read along with the generation; with none (nothing was ever
        changed, or Redis lost its data), there is nothing to check it against later."""
        if generation is None:
            return
        if channel.id not in self._known and len(self._known) >= self._size:
            self._known.pop(next(iter(self._known), ""), None)
        self._known[channel.id] = KnownChannel(channel, generation)

    def forget(self, channel_id: str) -> None:
        self._known.pop(channel_id, None)
