"""Accepting a user message: de-duplicate, queue it in its conversation's inbox, wake a bot turn.

It lives with conversations, not channels: what it writes is the conversation's inbox and
meta; a channel only authenticates the message and says which bot version it is for.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from broker.channels.channel import Channel
from broker.conversations.conversation import Conversation, ConversationMeta
from broker.core import clock, ids, keys, logs, scripts
from broker.core.connection import Pipeline, Redis
from broker.core.defaults import IDEMPOTENCY_TTL
from broker.core.sender import TaskSender
from broker.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    message_id: str
    conversation_id: str
    #: False when the idempotency key was seen before and nothing new was queued.
    queued: bool


def accept(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    *,
    channel: Channel,
    conversation_id: str,
    message: dict[str, Any],
    message_id: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Queue `message` (in normal form) for the channel's bot, in one round trip to Redis.

    A bot turn is enqueued only when the conversation has none pending; a running turn
    works through everything that arrives meanwhile.
    """
    conversation = Conversation.of(channel.bot_id, channel.version, conversation_id)
    message_id = message_id or ids.new_id("in")
    now = clock.now()
    entry = {
        **message,
        "messageId": message_id,
        "conversationId": conversation_id,
        "channelId": channel.id,
        "receivedAt": now,
    }
    queue = partial(
        _queue, settings, conversation, channel, entry, idempotency_key or message_id, now
    )
    (queued, recorded_id, wake), _, _ = scripts.execute(r, queue)
    if wake:
        sender.bot_turn(conversation.key)
    logs.event(
        log,
        logging.INFO,
        "message queued" if queued else "message repeated: not queued again",
        messageId=str(recorded_id),
        sessionId=conversation_id,
        channelId=channel.id,
        botId=channel.bot_id,
    )
    return Accepted(
        message_id=str(recorded_id), conversation_id=conversation_id, queued=bool(queued)
    )


def _queue(
    settings: Settings,
    conversation: Conversation,
    channel: Channel,
    entry: dict[str, Any],
    dedupe_key: str,
    now: float,
    pipe: Pipeline,
) -> None:
    """Queue the inbox entry (unless its key was seen), the turn's schedule and the
    conversation's place in the bot's index on a pipeline."""
    key = conversation.key
    scripts.add(
        pipe,
        "ingress",
        [
            keys.idempotency(key, dedupe_key),
            keys.conversation_inbox(key),
            keys.conversation_pending(key),
            keys.conversation_meta(key),
        ],
        [
            entry["messageId"],
            json.dumps(entry),
            IDEMPOTENCY_TTL,
            *ConversationMeta.arrival_fields(conversation, channel.id),
        ],
    )
    # The schedule is a safety net: should no task be sent, the scheduler wakes the turn.
    pipe.zadd(keys.TURNS, {key: now + settings.claim_lease}, nx=True)
    pipe.zadd(
        keys.bot_conversations(channel.bot_id, channel.version),
        {conversation.conversation_id: clock.ms(now)},
    )
