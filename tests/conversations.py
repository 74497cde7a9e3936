"""Conversations straight on the core, in tests: a bot's channel, what a user says on it, what
was queued for an endpoint, and the conversation's meta as its record holds it."""

from __future__ import annotations

import json
from typing import Any

from broker.bots import bot_store
from broker.channels import channel_store
from broker.channels.channel import Channel
from broker.conversations import dead_turns, ingress
from broker.conversations.conversation import ConversationMeta
from broker.core import clock, keys
from broker.core.connection import Redis
from broker.core.locks import Lock
from broker.core.sender import TaskSender
from broker.core.settings import Settings

ECHO: dict[str, Any] = {"template": "echo"}
#: Where the channels of these tests send: nobody listens there.
NOWHERE = "http://127.0.0.1:9/hook"


def new_channel(
    r: Redis, settings: Settings, definition: dict[str, Any] = ECHO, *, bot_name: str = "echo"
) -> Channel:
    """A new bot (an echo bot unless `definition` says otherwise) with a Webhook channel."""
    bot = bot_store.create(r, bot_name, definition)
    created = channel_store.create(r, settings, bot["id"], NOWHERE)
    return channel_store.get(r, created["id"])


def user_says(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    channel: Channel,
    text: str | None = None,
    *,
    conversation_id: str = "u1",
    idempotency_key: str | None = None,
    **fields: Any,
) -> ingress.Accepted:
    """A user's message on the channel, as ingress takes it in normal form: `text`, or the
    intro without one; `fields` (`sessionData`, say) join the message."""
    message = {"kind": "text", "text": text} if text is not None else {"kind": "intro"}
    return ingress.accept(
        r,
        settings,
        sender,
        channel=channel,
        conversation_id=conversation_id,
        message={**message, **fields},
        idempotency_key=idempotency_key,
    )


def queued_bodies(r: Redis, conversation_key: str, endpoint_id: str) -> list[dict[str, Any]]:
    """The documents in the conversation's queue for an endpoint, in order."""
    bodies = []
    for delivery_id in r.lrange(keys.fifo(conversation_key, endpoint_id), 0, -1):
        body = r.hget(keys.delivery(conversation_key, delivery_id), "body")
        assert body is not None, f"delivery {delivery_id} has no body"
        bodies.append(json.loads(body))
    return bodies


def read_meta(r: Redis, conversation_key: str) -> ConversationMeta:
    """The conversation's meta as a bot turn reads it."""
    return ConversationMeta.from_redis(
        conversation_key, r.hgetall(keys.conversation_meta(conversation_key))
    )


def park_head(r: Redis, settings: Settings, conversation_key: str, error: Exception) -> None:
    """Park the conversation's first waiting message as a dead letter of turns, as a turn
    that failed for good with `error` does."""
    lock = Lock(r, keys.conversation_lock(conversation_key), 5)
    assert lock.acquire()
    head = r.lindex(keys.conversation_inbox(conversation_key), 0)
    assert head is not None
    dead_turns.failed(
        r,
        settings.with_changes(turn_attempts=1),
        lock.token,
        read_meta(r, conversation_key),
        dead_turns.Item("message", head),
        error,
    )
    lock.release()


def pause(r: Redis, conversation_key: str) -> None:
    """Hand the conversation to an agent without an offload, as if one had been taken."""
    meta = read_meta(r, conversation_key)
    meta.handover.paused = True
    r.hset(keys.conversation_meta(conversation_key), mapping=meta.turn_fields())
    conversation = meta.conversation
    r.zadd(
        keys.bot_paused(conversation.bot_id, conversation.version),
        {conversation.index_member: clock.ms(clock.now())},
    )
