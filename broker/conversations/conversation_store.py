"""Conversations of a bot version, as operators see them: conversations, transcripts, variables."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, NamedTuple, get_args

from broker.bots import bot_store
from broker.bots.bot import Version
from broker.conversations.conversation import (
    Conversation,
    ConversationMeta,
    index_member,
    split_index_member,
)
from broker.conversations.handover import TIMER_NAMES, Handover, timer_member
from broker.conversations.ingress import data_sizes
from broker.core import clock, ids, keys, schedules, scripts
from broker.core.connection import Pipeline, Redis, index_shards
from broker.core.defaults import CONVERSATION_LOCK_WAIT
from broker.core.errors import AmbiguousConversation, Conflict, NotFound
from broker.core.locks import Lock
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from broker.delivery import endpoint_store, offloading
from broker.delivery.records import queue_ref

#: A listing of one channel's conversations reads at most this many index entries, in chunks
#: (the most recently active conversations of the bot version); its answer says when it stopped
#: there with more behind (`scanLimited`).
SCAN_LIMIT = 20_000
_CHUNK = 500
_LOCK_POLL = 0.02
#: How often forgetting the variables reads the waiting messages again, as more come in.
_DATA_SIZES_TRIES = 10


def find(
    r: Redis,
    bot_id: str,
    version: Version,
    conversation_id: str,
    channel_id: str | None = None,
) -> Conversation:
    """The conversation on `channel_id`, or on whichever of the bot's channels has it.

    NotFound when the bot or the conversation does not exist; AmbiguousConversation when no
    channel is named and more than one of the bot's channels has a conversation of that id.
    """
    if not bot_store.exists(r, bot_id):
        raise NotFound(f"no bot {bot_id!r}")
    channel_ids = [channel_id] if channel_id else sorted(r.smembers(keys.bot_channels(bot_id)))
    candidates = [Conversation.of(bot_id, version, c, conversation_id) for c in channel_ids]
    pipe = r.pipeline(transaction=False)
    for candidate in candidates:
        pipe.exists(keys.conversation_meta(candidate.key))
    found = [c for c, there in zip(candidates, pipe.execute(), strict=True) if there]
    if not found:
        on = f" on channel {channel_id!r}" if channel_id else ""
        raise NotFound(f"bot {bot_id!r} has no {version} session {conversation_id!r}{on}")
    if len(found) > 1:
        raise AmbiguousConversation(
            f"session {conversation_id!r} is on channels "
            f"{', '.join(c.channel_id for c in found)}; name one with channelId",
            field="channelId",
        )
    return found[0]


@contextmanager
def locked(
    r: Redis, settings: Settings, sender: TaskSender, conversation: Conversation
) -> Iterator[tuple[ConversationMeta, Lock]]:
    """Hold the conversation's lock, as a bot turn does, and yield its meta read under it,
    with the lock (a commit checks that it still holds it).

    Waits up to CONVERSATION_LOCK_WAIT for a running turn; after that the conversation is
    busy (409).
    A bot turn woken meanwhile found the conversation held and gave up, so one is woken
    again on the way out if messages wait.
    """
    lease = max(settings.claim_lease, CONVERSATION_LOCK_WAIT)
    lock = Lock(r, keys.conversation_lock(conversation.key), lease)
    if not lock.acquire_within(CONVERSATION_LOCK_WAIT, _LOCK_POLL):
        raise Conflict(f"session {conversation.conversation_id!r} is busy; try again")
    try:
        raw = r.hgetall(keys.conversation_meta(conversation.key))
        if not raw:
            raise NotFound(f"session {conversation.conversation_id!r} was deleted")
        yield ConversationMeta.from_redis(conversation.key, raw), lock
    finally:
        lock.release()
        if r.exists(keys.conversation_pending(conversation.key)):
            sender.bot_turn(conversation.key)


class ConversationPage(NamedTuple):
    items: list[dict[str, Any]]
    total: int
    #: A listing of one channel's conversations stopped after the version's SCAN_LIMIT most
    #: recently active ones: `total` counts those of the channel among them.
    scan_limited: bool = False


def list_page(
    r: Redis,
    bot_id: str,
    version: Version,
    offset: int,
    limit: int,
    *,
    paused: bool | None = None,
    channel_id: str | None = None,
) -> ConversationPage:
    """A bot version's conversations, the most recently active first; only the paused ones (or
    only the others) when `paused` says so, only those of one channel when it is named."""
    if not bot_store.exists(r, bot_id):
        raise NotFound(f"no bot {bot_id!r}")
    found, total, scan_limited = _page_of_ids(r, bot_id, version, offset, limit, paused, channel_id)
    conversation_keys = [
        ids.conversation_key(bot_id, version, *split_index_member(member)) for member, _ in found
    ]
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
    return ConversationPage(items, total, scan_limited)


def _page_of_ids(
    r: Redis,
    bot_id: str,
    version: Version,
    offset: int,
    limit: int,
    paused: bool | None,
    channel_id: str | None,
) -> tuple[list[tuple[str, float]], int, bool]:
    """Index members with their last activity (ms), newest first, how many there are, and
    whether the count stopped short (see `ConversationPage`)."""
    if channel_id is not None and "|" in channel_id:
        return [], 0, False  # no channel's id has one
    index = keys.bot_conversations(bot_id, version)
    paused_index = keys.bot_paused(bot_id, version)
    if paused:
        # Paused conversations are few (each has an agent): scored by their last activity.
        chosen = r.zinter({index: 1, paused_index: 0}, withscores=True)
        if channel_id is not None:
            chosen = [(member, score) for member, score in chosen if _on(member, channel_id)]
        ordered = sorted(chosen, key=lambda item: item[1], reverse=True)
        return ordered[offset : offset + limit], len(ordered), False
    if channel_id is not None:
        skipped = set(r.zrange(paused_index, 0, -1)) if paused is False else set()
        return _page_of_channel(r, index, offset, limit, channel_id, skipped)
    if paused is None:
        pipe = r.pipeline(transaction=False)
        pipe.zrevrange(index, offset, offset + limit - 1, withscores=True)
        pipe.zcard(index)
        found, total = pipe.execute()
        return found, int(total), False
    return *_page_without_paused(r, index, paused_index, offset, limit), False


def _page_without_paused(
    r: Redis, index: str, paused_index: str, offset: int, limit: int
) -> tuple[list[tuple[str, float]], int]:
    """A page of the conversations that are not paused, read from the index by rank: the
    few paused ones are skipped, so that the page costs what its size does, however many
    conversations the bot has."""
    pipe = r.pipeline(transaction=False)
    pipe.zrange(paused_index, 0, -1)
    pipe.zcard(index)
    paused_members, total = pipe.execute()
    pipe = r.pipeline(transaction=False)
    for member in paused_members:
        pipe.zrevrank(index, member)
    paused_ranks = sorted(rank for rank in pipe.execute() if rank is not None)
    # The index rank of the offset-th conversation that is not paused: the offset plus the
    # paused ones ranked at or before it.
    start = offset
    while start != offset + sum(1 for rank in paused_ranks if rank <= start):
        start = offset + sum(1 for rank in paused_ranks if rank <= start)
    skipped = set(paused_members)
    found = r.zrevrange(index, start, start + limit + len(paused_ranks) - 1, withscores=True)
    chosen = [(member, score) for member, score in found if member not in skipped]
    return chosen[:limit], int(total) - len(paused_ranks)


def _page_of_channel(
    r: Redis, index: str, offset: int, limit: int, channel_id: str, skipped: set[str]
) -> tuple[list[tuple[str, float]], int, bool]:
    """As `_page_of_ids`, for one channel but the `skipped` members: the index has no order by
    channel, so it is read newest first, in chunks, at most SCAN_LIMIT entries. Read by rank
    while conversations go on: one that moves to the top moves others down a rank, so a chunk
    may begin with one already read."""
    chosen: list[tuple[str, float]] = []
    counted: set[str] = set()
    for start in range(0, SCAN_LIMIT, _CHUNK):
        chunk = r.zrevrange(index, start, start + _CHUNK - 1, withscores=True)
        for member, score in chunk:
            if member in counted or member in skipped or not _on(member, channel_id):
                continue
            if offset <= len(counted) < offset + limit:
                chosen.append((member, score))
            counted.add(member)
        if len(chunk) < _CHUNK:
            return chosen, len(counted), False
    return chosen, len(counted), int(r.zcard(index)) > SCAN_LIMIT


def _on(member: str, channel_id: str) -> bool:
    """Whether the index member is a conversation on that channel."""
    return split_index_member(member)[0] == channel_id


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
    """Forget the conversation's variables; where it stands in the dialogue is kept. What
    counts toward its sessionData limits from then on is what its waiting and parked
    messages set (they were acknowledged, and set it when their turn comes or they are
    replayed), and what comes later."""
    with locked(r, settings, sender, conversation) as (meta, _):
        meta.memory.variables = {}
        r.hset(keys.conversation_meta(conversation.key), mapping=meta.turn_fields())
        for _ in range(_DATA_SIZES_TRIES):
            parked = _parked_messages(r, conversation)
            if _count_waiting_data(r, settings, conversation.key, parked):
                return
        raise Conflict(f"session {conversation.conversation_id!r} is busy; try again")


def _parked_messages(r: Redis, conversation: Conversation) -> list[str]:
    """The conversation's messages parked as dead letters of turns: a replay puts them back
    in its inbox, with their variables."""
    found = [
        dead_turn_id
        for dead_turn_id in r.zrange(keys.bot_dead_turns(conversation.bot_id), 0, -1)
        if ids.is_dead_turn_of(dead_turn_id, conversation.key)
    ]
    pipe = r.pipeline(transaction=False)
    for dead_turn_id in found:
        pipe.hmget(keys.dead_turn(conversation.key, dead_turn_id), ["kind", "item"])
    return [item for kind, item in pipe.execute() if kind == "message" and item]


def _count_waiting_data(
    r: Redis, settings: Settings, conversation_key: str, parked: list[str]
) -> bool:
    """Count the variables that the waiting messages and the `parked` ones set as the
    conversation's only ones (the larger size where two set one variable); False when a
    message came in meanwhile."""
    waiting = r.lrange(keys.conversation_inbox(conversation_key), 0, -1)
    sizes: dict[str, int] = {}
    for entry in [*parked, *waiting]:
        for key, size in data_sizes(json.loads(entry)).items():
            sizes[key] = max(size, sizes.get(key, 0))
    answer = scripts.run(
        r,
        "data_sizes_reset",
        [
            keys.conversation_meta(conversation_key),
            keys.conversation_data_sizes(conversation_key),
            keys.conversation_inbox(conversation_key),
        ],
        [
            len(waiting),
            sum(sizes.values()),
            math.ceil(settings.conversation_ttl),
            *itertools.chain.from_iterable(sizes.items()),
        ],
    )
    return bool(answer)


def make_turns_pending(r: Redis, settings: Settings, conversation_keys: Sequence[str]) -> list[str]:
    """Make a bot turn pending for each conversation, on the turn schedule and flagged, as
    the ingress does for a message; the conversations that had none pending, whose turn the
    caller wakes (`TaskSender.bot_turn`)."""
    if not conversation_keys:
        return []
    at = clock.now() + settings.claim_lease
    ttl = math.ceil(settings.conversation_ttl)

    def schedule(pipe: Pipeline) -> None:
        for key in conversation_keys:
            schedules.add_turn(pipe, key, at)

    def flag(pipe: Pipeline) -> None:
        for key in conversation_keys:
            pipe.set(keys.conversation_pending(key), "1", nx=True, ex=ttl)

    # The schedule first (not in the conversations' slots), as the ingress does.
    flagged = scripts.execute_in_order(r, schedule, flag)[-len(conversation_keys) :]
    return [key for key, was_set in zip(conversation_keys, flagged, strict=True) if was_set]


def give_paused_back(r: Redis, settings: Settings, sender: TaskSender, bot_id: str) -> None:
    """The bot's offloading integration is gone: no agent can answer its paused
    conversations, so each is the bot's again now, under its lock (a turn that ran later
    could find an integration configured again meanwhile), and its waiting messages' turn
    is woken. One that a turn holds too long is left to that turn, which gives it back."""
    for version in get_args(Version):
        for member in r.zrange(keys.bot_paused(bot_id, version), 0, -1):
            conversation = Conversation.of(bot_id, version, *split_index_member(member))
            try:
                _give_back(r, settings, sender, conversation)
            except NotFound:
                r.zrem(keys.bot_paused(bot_id, version), member)  # deleted meanwhile
            except Conflict:
                for key in make_turns_pending(r, settings, [conversation.key]):
                    sender.bot_turn(key)


def give_up_offloads(
    r: Redis, settings: Settings, sender: TaskSender, delivery_ids: Sequence[str]
) -> None:
    """These offloads went with their endpoint, unanswered: each conversation is told now that
    its offload failed, rather than when its offload timer fires."""
    for delivery_id in delivery_ids:
        failed = {
            "kind": "delivery",
            "deliveryId": delivery_id,
            "delivered": False,
            "error": "the offloading integration was removed",
        }
        give_signal(r, settings, sender, ids.conversation_of_delivery(delivery_id), failed)


def give_signal(
    r: Redis, settings: Settings, sender: TaskSender, conversation_key: str, signal: dict[str, Any]
) -> None:
    """Give a conversation a signal for its next bot turn, and wake the turn."""
    due = clock.now() + settings.claim_lease
    # On the schedule first (sb:turns is not in the conversation's hash slot): should we
    # die before the wake-up, the scheduler runs the turn when this entry comes due.
    _, wake = scripts.execute_in_order(
        r,
        partial(schedules.add_turn, conversation_key=conversation_key, at=due),
        partial(_add_signal, conversation_key=conversation_key, signal=json.dumps(signal)),
    )
    if wake:
        sender.bot_turn(conversation_key)


def _add_signal(pipe: Pipeline, conversation_key: str, signal: str) -> None:
    keys_of_signal = [
        keys.conversation_signals(conversation_key),
        keys.conversation_pending(conversation_key),
    ]
    scripts.add(pipe, "signal", keys_of_signal, [signal])


def _give_back(
    r: Redis, settings: Settings, sender: TaskSender, conversation: Conversation
) -> None:
    with locked(r, settings, sender, conversation) as (meta, _):
        handover = Handover(settings, conversation, meta.handover)
        handover.resume()
        meta.handover.agent_messages = 0
        r.hset(keys.conversation_meta(conversation.key), mapping=meta.turn_fields())
        handover.changes.write_adds(r)
        handover.changes.write_removes(r)
        if r.llen(keys.conversation_inbox(conversation.key)):
            make_turns_pending(r, settings, [conversation.key])  # `locked` wakes it


def remove_all(r: Redis, bot_id: str, version: Version) -> None:
    """Remove every conversation of a bot version with its keys, queues, schedules and index
    entries, and the deliveries their queues hold, a chunk at a time; the index entries go
    last, so a cut-short pass resumes. (A queue's entries on `sb:due` are named by claims not
    known here: each goes when it comes due and its worker finds the queue empty.)"""
    index = keys.bot_conversations(bot_id, version)
    while chunk := r.zrange(index, 0, _CHUNK - 1):
        _remove(r, bot_id, version, chunk)


def remove_of_channel(r: Redis, bot_id: str, channel_id: str) -> None:
    """Remove the conversations of one of the bot's channels, as `remove_all` does."""
    for version in get_args(Version):
        index = keys.bot_conversations(bot_id, version)
        pattern = keys.glob_escaped(index_member(channel_id, "")) + "*"
        while chunk := [m for m, _ in itertools.islice(r.zscan_iter(index, match=pattern), _CHUNK)]:
            _remove(r, bot_id, version, chunk)


def _remove(r: Redis, bot_id: str, version: Version, members: list[str]) -> None:
    """Remove these conversations (index members) with their keys, schedules and queues (with
    the deliveries they hold). Their keys go first: a turn still under way then loses its
    lock, and adds nothing to their queues; their index entries go last."""
    offloading_endpoint = offloading.endpoint_id(bot_id)
    conversations = [
        (ids.conversation_key(bot_id, version, channel_id, conversation_id), channel_id)
        for channel_id, conversation_id in map(split_index_member, members)
    ]
    pipe = r.pipeline(transaction=False)
    for key, _ in conversations:
        # One DEL a key: a Redis Cluster's pipeline takes no DEL of several keys.
        for name in keys.conversation_keys(key):
            pipe.delete(name)
        pipe.zrem(keys.turns(key, index_shards(r)), key)
        pipe.zrem(
            keys.shard_of(keys.TIMERS, key, index_shards(r)),
            *(timer_member(key, name) for name in TIMER_NAMES),
        )
    pipe.execute()
    endpoint_store.remove_queues(
        r,
        [
            queue_ref(key, endpoint_id)
            for key, channel_id in conversations
            for endpoint_id in (channel_id, offloading_endpoint)
        ],
    )
    pipe = r.pipeline(transaction=False)
    pipe.zrem(keys.bot_paused(bot_id, version), *members)
    pipe.zrem(keys.bot_conversations(bot_id, version), *members)
    pipe.execute()


def expire_index_entries(r: Redis, settings: Settings) -> None:
    """Drop index entries of conversations idle past SWITCHBOARD_CONVERSATION_TTL, whose keys
    have expired."""
    oldest = clock.now_ms() - settings.conversation_ttl * 1000
    for bot_id in r.zrange(keys.BOTS, 0, -1):
        for version in get_args(Version):
            index = keys.bot_conversations(bot_id, version)
            while idle := r.zrangebyscore(index, "-inf", oldest, start=0, num=_CHUNK):
                pipe = r.pipeline(transaction=False)
                pipe.zrem(keys.bot_paused(bot_id, version), *idle)
                pipe.zrem(index, *idle)
                pipe.execute()


def touch(r: Redis, conversation: Conversation, at: float) -> None:
    """Mark activity in the version's conversation index."""
    r.zadd(
        keys.bot_conversations(conversation.bot_id, conversation.version),
        {conversation.index_member: clock.ms(at)},
    )
