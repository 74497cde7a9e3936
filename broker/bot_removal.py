"""Removing a bot with everything under it, or one of its channels with its conversations.

A bot goes with its channels (and their endpoints with their deliveries), its offloading
integration, its API tokens, its conversations (with their transcripts, variables, queues
and index entries), its dead letters of turns, then the bot. It spans every package, so it
sits above them all.

A removal is resumable: the bot is on `sb:removing-bots` until the last step, every step can
be done again, and housekeeping (`resume_removals`) finishes a removal that was cut short.
Channels go first, so that nothing new comes in while the rest goes.
"""

from __future__ import annotations

from typing import get_args

from broker.auth import api_tokens
from broker.bots import bot_store
from broker.bots.bot import Version
from broker.channels import channel_store
from broker.conversations import conversation_store, dead_turns
from broker.core import keys
from broker.core.connection import Redis
from broker.delivery import offloading


def remove_bot(r: Redis, bot_id: str) -> None:
    """Delete the bot and what hangs off it; NotFound when there is no such bot."""
    if not r.sismember(keys.REMOVING_BOTS, bot_id):
        bot_store.load(r, bot_id)
        r.sadd(keys.REMOVING_BOTS, bot_id)
    _finish(r, bot_id)


def resume_removals(r: Redis) -> None:
    """Finish the removals of bots that were cut short."""
    for bot_id in r.smembers(keys.REMOVING_BOTS):
        _finish(r, bot_id)


def remove_channel(r: Redis, bot_id: str, channel_id: str) -> None:
    """Delete a channel of the bot, then its conversations: they could never be written to
    again, and would be listed, with a channel that is not there, until they expired."""
    channel_store.delete(r, channel_id)
    conversation_store.remove_of_channel(r, bot_id, channel_id)


def _finish(r: Redis, bot_id: str) -> None:
    for channel_id in sorted(r.smembers(keys.bot_channels(bot_id))):
        channel_store.delete(r, channel_id)
    offloading.remove_if_any(r, bot_id)
    api_tokens.revoke_all(r, bot_id)
    for version in get_args(Version):
        conversation_store.remove_all(r, bot_id, version)
    dead_turns.remove_all(r, bot_id)
    bot_store.delete(r, bot_id)
    r.srem(keys.REMOVING_BOTS, bot_id)
