"""What bot turns and agent actions read to run a conversation's dialogue: its bot version's
program and engine, its offloading endpoint and its channel.

Bot turns keep what they read for as long as the bots and channels stay as they were (a
generation of them, `broker.core.generation`), and read what a batch lacks in one round trip
(`Loader.prefetch`); an agent action reads afresh.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from broker.bots import bot_store, payload_secret
from broker.bots.actions import Actions
from broker.bots.bot import Version
from broker.bots.engine import Engine
from broker.bots.payloads import PayloadKey
from broker.bots.program import Program, compile_text
from broker.channels.channel import Channel
from broker.conversations.conversation import Conversation
from broker.core import keys
from broker.core.connection import Redis
from broker.delivery import offloading

log = logging.getLogger(__name__)


@dataclass
class Known:
    """What was read of bots, offloading endpoints and channels, as of one generation of
    them (`broker.core.generation`); None where there was none."""

    generation: str | None
    definitions: dict[tuple[str, Version], str | None] = field(default_factory=dict)
    offloading: dict[str, str | None] = field(default_factory=dict)
    channels: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The secret that signs button payloads (`broker.bots.payload_secret`), once read.
    payload_secret: str | None = None


class KnownByProcess:
    """The process's `Known`, started again when the generation moves on."""

    def __init__(self) -> None:
        self._known = Known(None)
        self._lock = threading.Lock()

    def of(self, seen_generation: str | None) -> Known:
        with self._lock:
            if self._known.generation != seen_generation:
                self._known = Known(seen_generation)
            return self._known


#: What this process's bot turns know.
KNOWN = KnownByProcess()


class Loader:
    """Reads through `known` (none: a new one, everything read once): what it holds is not
    read again."""

    def __init__(self, r: Redis, known: Known | None = None) -> None:
        self.r = r
        self.known = Known(None) if known is None else known
        self._programs: dict[tuple[str, Version], Program | None] = {}
        self._channels: dict[str, Channel | None] = {}

    def prefetch(self, conversations: Iterable[Conversation]) -> None:
        """Read the bots, offloading endpoints and channels of `conversations` not known yet,
        in one round trip for all of them."""
        known = self.known
        seen = list(conversations)
        versions = [
            key
            for key in dict.fromkeys((c.bot_id, c.version) for c in seen)
            if key not in known.definitions
        ]
        bots = [b for b in dict.fromkeys(c.bot_id for c in seen) if b not in known.offloading]
        channels = [c for c in dict.fromkeys(c.channel_id for c in seen) if c not in known.channels]
        if not (versions or bots or channels):
            return
        pipe = self.r.pipeline(transaction=False)
        for bot_id, version in versions:
            pipe.hget(*bot_store.definition_location(bot_id, version))
        for bot_id in bots:
            pipe.hget(*offloading.endpoint_location(bot_id))
        for channel_id in channels:
            pipe.hgetall(keys.channel(channel_id))
        answers = iter(pipe.execute())
        for key in versions:
            known.definitions[key] = next(answers)
        for bot_id in bots:
            known.offloading[bot_id] = next(answers)
        for channel_id in channels:
            known.channels[channel_id] = next(answers)

    def engine(self, conversation: Conversation, actions: Actions | None = None) -> Engine | None:
        """The conversation's engine: its bot version's program, its own payload key; None
        when the bot is gone."""
        program = self.program(conversation.bot_id, conversation.version)
        if program is None:
            return None
        if self.known.payload_secret is None:
            self.known.payload_secret = payload_secret.read(self.r)
        payloads = PayloadKey.for_conversation(self.known.payload_secret, conversation.key)
        return Engine(program, actions, payloads)

    def program(self, bot_id: str, version: Version) -> Program | None:
        if (bot_id, version) not in self._programs:
            if (bot_id, version) not in self.known.definitions:
                text = self.r.hget(*bot_store.definition_location(bot_id, version))
                self.known.definitions[(bot_id, version)] = text
            text = self.known.definitions[(bot_id, version)]
            if text is None:
                log.warning(
                    "bot %s is gone; the messages of its conversations are not answered", bot_id
                )
            self._programs[(bot_id, version)] = None if text is None else compile_text(text)
        return self._programs[(bot_id, version)]

    def offloading_endpoint(self, bot_id: str) -> str | None:
        if bot_id not in self.known.offloading:
            self.known.offloading[bot_id] = offloading.endpoint_of(self.r, bot_id)
        return self.known.offloading[bot_id]

    def channel(self, channel_id: str) -> Channel | None:
        """A channel, or None (logged) when it was removed."""
        if channel_id not in self._channels:
            if channel_id not in self.known.channels:
                self.known.channels[channel_id] = self.r.hgetall(keys.channel(channel_id))
            raw = self.known.channels[channel_id]
            self._channels[channel_id] = Channel.from_redis(raw) if raw else None
            if not raw:
                log.warning(
                    "channel %s is gone; the replies to its messages are not sent", channel_id
                )
        return self._channels[channel_id]
