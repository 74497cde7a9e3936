"""Reading and changing a conversation's meta in tests, through its record."""

from __future__ import annotations

from typing import Any

from broker.conversations.conversation import ConversationMeta
from broker.core import keys


def read_meta(r: Any, conversation_key: str) -> ConversationMeta:
    """The conversation's meta as a bot turn reads it (`r`: any Redis client that decodes)."""
    return ConversationMeta.from_redis(
        conversation_key, r.hgetall(keys.conversation_meta(conversation_key))
    )


def pause(r: Any, conversation_key: str) -> None:
    """Hand the conversation to an agent without an offload, as if one had been taken."""
    meta = read_meta(r, conversation_key)
    meta.handover.paused = True
    r.hset(keys.conversation_meta(conversation_key), mapping=meta.turn_fields())
