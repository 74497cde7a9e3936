"""Conversations of a bot version, as operators see them: conversations, transcripts, variables."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from broker.bots import bot_store
from broker.bots.bot_store import Version
from broker.bots.engine import Memory
from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.errors import Conflict, NotFound
from broker.core.locks import Lock
from broker.core.sender import TaskSender
from broker.core.settings import Settings

#: How long a management request waits for a bot turn to let go of its conversation.
LOCK_WAIT = 5.0
_LOCK_POLL = 0.02


@dataclass(frozen=True)
class Conversation:
    bot_id: str
    version: Version
    conversation_id: str
    #: The conversation's short name inside Redis keys.
    key: str


def find(r: Redis, bot_id: str, version: Version, conversation_id: str) -> Conversation:
    """The conversation, or NotFound when the bot or the conversation does not exist."""
    if not bot_store.exists(r, bot_id):
        raise NotFound(f"no bot {bot_id!r}")
    key = ids.conversation_key(bot_id, version, conversation_id)
    if not r.exists(keys.conversation_meta(key)):
        raise NotFound(f"bot {bot_id!r} has no {version} session {conversation_id!r}")
    return Conversation(bot_id, version, conversation_id, key)


@contextmanager
def locked(
    r: Redis, settings: Settings, sender: TaskSender, conversation: Conversation
) -> Iterator[dict[str, str]]:
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
        meta: dict[str, str] = r.hgetall(keys.conversation_meta(conversation.key))
        if not meta:
            raise NotFound(f"session {conversation.conversation_id!r} was deleted")
        yield meta
    finally:
        lock.release()
        if r.exists(keys.conversation_pending(conversation.key)):
            sender.bot_turn(conversation.key)


def is_paused(meta: dict[str, str]) -> bool:
    return meta.get("paused") == "1"


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
    pipe = r.pipeline()
    for conversation_id, _ in found:
        key = ids.conversation_key(bot_id, version, conversation_id)
        pipe.hgetall(keys.conversation_meta(key))
        pipe.llen(keys.conversation_transcript(key))
    answers = pipe.execute()
    items = [
        _summary(conversation_id, version, score, answers[2 * i], answers[2 * i + 1])
        for i, (conversation_id, score) in enumerate(found)
        if answers[2 * i]
    ]
    return items, total


def _page_of_ids(
    r: Redis, bot_id: str, version: Version, offset: int, limit: int, paused: bool | None
) -> tuple[list[tuple[str, float]], int]:
    """Conversation ids with their last activity (ms), newest first, and how many there are."""
    index = keys.bot_conversations(bot_id, version)
    if paused is None:
        pipe = r.pipeline()
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


def _summary(
    conversation_id: str, version: str, score: float, meta: dict[str, str], messages: int
) -> dict[str, Any]:
    state = Memory.from_json(meta.get("state"))
    last = max(score / 1000, float(meta.get("lastActivityAt") or 0))
    return {
        "sessionId": conversation_id,
        "version": version,
        "channelId": meta.get("channelId"),
        "state": state.state,
        "paused": is_paused(meta),
        "offloadPending": bool(meta.get("offloadPending")),
        "messageCount": messages,
        "lastActivityAt": clock.iso(last),
    }


def transcript_page(
    r: Redis, conversation: Conversation, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The conversation's transcript, oldest first."""
    key = keys.conversation_transcript(conversation.key)
    pipe = r.pipeline()
    pipe.lrange(key, offset, offset + limit - 1)
    pipe.llen(key)
    items, total = pipe.execute()
    return [json.loads(item) for item in items], int(total)


def variables(r: Redis, conversation: Conversation) -> dict[str, Any]:
    state = Memory.from_json(r.hget(keys.conversation_meta(conversation.key), "state"))
    return {
        "sessionId": conversation.conversation_id,
        "version": conversation.version,
        "sessionData": state.variables,
    }


def forget_variables(
    r: Redis, settings: Settings, sender: TaskSender, conversation: Conversation
) -> None:
    """Forget the conversation's variables; where it stands in the dialogue is kept."""
    with locked(r, settings, sender, conversation) as meta:
        state = Memory.from_json(meta.get("state"))
        state.variables = {}
        r.hset(keys.conversation_meta(conversation.key), "state", state.to_json())


def touch(r: Redis, conversation: Conversation, at: float) -> None:
    """Mark activity in the version's conversation index."""
    r.zadd(
        keys.bot_conversations(conversation.bot_id, conversation.version),
        {conversation.conversation_id: int(at * 1000)},
    )
