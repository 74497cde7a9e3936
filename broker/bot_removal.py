"""Removing a bot with everything under it, or one of its channels with its conversations.

A bot goes with its channels (and their endpoints with their deliveries), its offloading
integration, its API tokens, its conversations (with their transcripts, variables, queues
and index entries), its dead letters of turns, then the bot. It spans every package, so it
sits above them all.

A removal is resumable: the bot is on `sb:removing-bots` (a channel on
`sb:removing-channels`) until the last step, every step can be done again, and
housekeeping (`resume_removals`) finishes a removal that was cut short. Channels go first,
so that nothing new comes in while the rest goes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import get_args

from broker.auth import api_tokens
from broker.bots import bot_store
from broker.bots.bot import Version
from broker.channels import channel_store
from broker.conversations import conversation_store, dead_turns
from broker.core import keys
from broker.core.connection import REDIS_TROUBLE, Redis
from broker.core.errors import NotFound
from broker.delivery import offloading

log = logging.getLogger(__name__)


def remove_bot(r: Redis, bot_id: str) -> None:
    """Delete the bot and what hangs off it; NotFound when there is no such bot."""
    if not r.sismember(keys.REMOVING_BOTS, bot_id):
        bot_store.load(r, bot_id)
        r.sadd(keys.REMOVING_BOTS, bot_id)
    _finish_bot(r, bot_id)


def remove_channel(r: Redis, bot_id: str, channel_id: str) -> None:
    """Delete a channel of the bot, then its conversations: they could never be written to
    again, and would be listed, with a channel that is not there, until they expired.
    NotFound when the bot has no such channel."""
    if r.hget(keys.REMOVING_CHANNELS, channel_id) != bot_id:
        if channel_store.get(r, channel_id).bot_id != bot_id:
            raise NotFound(f"bot {bot_id!r} has no channel {channel_id!r}")
        r.hset(keys.REMOVING_CHANNELS, channel_id, bot_id)
    _finish_channel(r, bot_id, channel_id)


def resume_removals(r: Redis) -> None:
    """Finish the removals of bots and channels that were cut short. One that fails is
    logged and tried again at the next pass; the others go on."""
    for channel_id, bot_id in r.hgetall(keys.REMOVING_CHANNELS).items():
        _resume(f"channel {channel_id}", partial(_finish_channel, r, bot_id, channel_id))
    for bot_id in r.smembers(keys.REMOVING_BOTS):
        _resume(f"bot {bot_id}", partial(_finish_bot, r, bot_id))


def _resume(what: str, finish: Callable[[], None]) -> None:
    try:
        finish()
    except REDIS_TROUBLE:
        raise  # the scheduler waits for Redis, and tries again
    except Exception:
        log.exception("finishing the removal of %s failed; it is tried again later", what)


def _finish_channel(r: Redis, bot_id: str, channel_id: str) -> None:
    channel_store.delete(r, bot_id, channel_id)
    conversation_store.remove_of_channel(r, bot_id, channel_id)
    r.hdel(keys.REMOVING_CHANNELS, channel_id)


def _finish_bot(r: Redis, bot_id: str) -> None:
    for channel_id in sorted(r.smembers(keys.bot_channels(bot_id))):
        channel_store.delete(r, bot_id, channel_id)
    offloading.remove_if_any(r, bot_id)
    api_tokens.revoke_all(r, bot_id)
    for version in get_args(Version):
        conversation_store.remove_all(r, bot_id, version)
    dead_turns.remove_all(r, bot_id)
    bot_store.delete(r, bot_id)
    r.srem(keys.REMOVING_BOTS, bot_id)
