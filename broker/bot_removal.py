"""Removing a bot with everything under it: its channels (and their endpoints), its
offloading integration, its API tokens, then the bot. It spans every package, so it sits
above them all."""

from __future__ import annotations

from broker.auth import api_tokens
from broker.bots import bot_store
from broker.channels import channel_store
from broker.core.connection import Redis
from broker.delivery import offloading


def remove_bot(r: Redis, bot_id: str) -> None:
    """Delete the bot and what hangs off it; NotFound when there is no such bot."""
    for channel_id in bot_store.delete(r, bot_id):
        channel_store.delete(r, channel_id)
    offloading.remove_if_any(r, bot_id)
    api_tokens.revoke_all(r, bot_id)
