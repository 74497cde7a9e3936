"""Conversations of a bot version, as operators see them: conversations, transcripts, variables."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from broker.bots import bot_store
from broker.bots.bot import Version
from broker.conversations.conversation import Conversation, ConversationMeta
from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.errors import Conflict, NotFound
from broker.core.locks import Lock
from broker.core.sender import TaskSender
from broker.core.settings import Settings

#: How long a management request waits for a bot turn to let go of its conversation.
LOCK_WAIT = 5.0
_LOCK_POLL = 0.02


def find(r: Redis, bot_id: str, version: Version, conversation_id: str) -> Conversation:
    """The conversation, or NotFound when the bot or the conversation does not exist."""
    if not bot_store.exists(r, bot_id):
        raise NotFound(f"no bot {bot_id!r}")
    conversation = Conversation.of(bot_id, version, conversation_id)
    if not r.exists(keys.conversation_meta(conversation.key)):
        raise NotFound(f"bot {bot_id!r} has no {version} session {conversation_id!r}")
    return conversation


@contextmanager
def locked(
    r: Redis, settings: Settings, sender: TaskSender, conversation: Conversation
) -> Iterator[ConversationMeta]:
    """Hold the conversation's lock, as a bot turn does, and yield its meta read under it.

    Waits up to LOCK_WAIT for a running turn; after that the conversation is busy (409).
    A bot turn woken meanwhile found the conversation held and gave up, so one is woken
    again on the way out if messages wait.
    """
    lock = Lock(r, keys.conversation_lock(conversation.key), max(settings.claim_lease, LOCK_WAIT))
    deadline = time.monotonic() + LOCK_WAIT
    while not lock.acquire():
        if time.monotonic() > deadline:
            raise Conflict(f"session {conversation.conversation_id!r} is busy; try again")
        time.sleep(_LOCK_POLL)
    try:
        raw = r.hgetall(keys.conversation_meta(conversation.key))
        if not raw:
            raise NotFound(f"session {conversation.conversation_id!r} was deleted")
        yield ConversationMeta.from_redis(conversation.key, raw)
    finally:
        lock.release()
        if r.exists(keys.conversation_pending(conversation.key)):
            sender.bot_turn(conversation.key)


def list_page(
    r: Redis,
    bot_id: str,
    version: Version,
    offset: int,
    limit: int,
    *,
    paused: bool | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A bot version's conversations, the most recently active first; only the paused ones (or
    only the others) when `paused` says so."""
    if not bot_store.exists(r, bot_id):
        raise NotFound(f"no bot {bot_id!r}")
    found, total = _page_of_ids(r, bot_id, version, offset, limit, paused)
    conversation_keys = [ids.conversation_key(bot_id, version, c) for c, _ in found]
    pipe = r.pipeline(transaction=False)
    for key in conversation_keys:
        pipe.hgetall(keys.conversation_meta(key))
        pipe.llen(keys.conversation_transcript(key))
    answers = pipe.execute()
    items = [
        _summary(ConversationMeta.from_redis(key, answers[2 * i]), score, answers[2 * i + 1])
        for i, (key, (_, score)) in enumerate(zip(conversation_keys, found, strict=True))
        if answers[2 * i]
    ]
    return items, total


def _page_of_ids(
    r: Redis, bot_id: str, version: Version, offset: int, limit: int, paused: bool | None
) -> tuple[list[tuple[str, float]], int]:
    """Conversation ids with their last activity (ms), newest first, and how many there are."""
    index = keys.bot_conversations(bot_id, version)
    if paused is None:
        pipe = r.pipeline(transaction=False)
        pipe.zrevrange(index, offset, offset + limit - 1, withscores=True)
        pipe.zcard(index)
        found, total = pipe.execute()
        return found, int(total)
    paused_index = keys.bot_paused(bot_id, version)
    if paused:
        # Paused conversations are few (each has an agent): scored by their last activity.
        chosen = r.zinter({index: 1, paused_index: 0}, withscores=True)
    else:
        chosen = r.zdiff([index, paused_index], withscores=True)
    ordered = sorted(chosen, key=lambda item: item[1], reverse=True)
    return ordered[offset : offset + limit], len(ordered)


def _summary(meta: ConversationMeta, score: float, messages: int) -> dict[str, Any]:
    """A conversation in a listing; `score` is its last activity in the index (ms)."""
    return {
        "sessionId": meta.conversation.conversation_id,
        "version": meta.conversation.version,
        "channelId": meta.channel_id,
        "state": meta.memory.state,
        "paused": meta.handover.paused,
        "offloadPending": bool(meta.handover.offload_pending),
        "messageCount": messages,
        "lastActivityAt": clock.iso(max(score / 1000, meta.last_activity_at)),
    }


def transcript_page(
    r: Redis, conversation: Conversation, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The conversation's transcript, oldest first."""
    key = keys.conversation_transcript(conversation.key)
    pipe = r.pipeline(transaction=False)
    pipe.lrange(key, offset, offset + limit - 1)
    pipe.llen(key)
    items, total = pipe.execute()
    return [json.loads(item) for item in items], int(total)


def variables(r: Redis, conversation: Conversation) -> dict[str, Any]:
    """The conversation's variables, as the management API shows them."""
    raw = r.hgetall(keys.conversation_meta(conversation.key))
    if not raw:
        raise NotFound(f"session {conversation.conversation_id!r} was deleted")
    meta = ConversationMeta.from_redis(conversation.key, raw)
    return {
        "sessionId": conversation.conversation_id,
        "version": conversation.version,
        "sessionData": meta.memory.variables,
    }


def forget_variables(
    r: Redis, settings: Settings, sender: TaskSender, conversation: Conversation
) -> None:
    """Forget the conversation's variables; where it stands in the dialogue is kept."""
    with locked(r, settings, sender, conversation) as meta:
        meta.memory.variables = {}
        r.hset(keys.conversation_meta(conversation.key), mapping=meta.turn_fields())


def touch(r: Redis, conversation: Conversation, at: float) -> None:
    """Mark activity in the version's conversation index."""
    r.zadd(
        keys.bot_conversations(conversation.bot_id, conversation.version),
        {conversation.conversation_id: clock.ms(at)},
    )
