"""Accepting a user message: de-duplicate, queue it in its conversation's inbox, wake a bot turn.

It lives with conversations, not channels: what it writes is the conversation's inbox and
meta; a channel only authenticates the message and says which bot version it is for.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from broker.auth import throttle
from broker.bots.variables import compact_json, text_size
from broker.channels.channel import Channel
from broker.conversations.conversation import Conversation, ConversationMeta
from broker.core import clock, ids, keys, logs, schedules, scripts
from broker.core.connection import REDIS_TROUBLE, Pipeline, Redis, on_cluster
from broker.core.defaults import (
    CLUSTER_RESEND_WINDOW,
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_TTL,
    UNAVAILABLE_RETRY_AFTER,
)
from broker.core.errors import Unavailable, ValidationFailed
from broker.core.sender import TaskSender
from broker.core.settings import Settings

log = logging.getLogger(__name__)

#: What `ingress.lua` says of the bot turn: to be woken here (it may have pushed it itself).
_WAKE_NEEDED = 1
#: What `ingress.lua` answers first when it queues nothing: the message is over a limit of
#: the conversation's, the guard does not hold (the generation moved on, a counter is at its
#: limit), or its key was seen with another message.
_OVER_LIMIT, _CHANGED, _THROTTLED, _KEY_REUSED = -1, -2, -3, -4


@dataclass(frozen=True)
class Guard:
    """What the ingress script checks before it queues a message of a channel authenticated
    from a web process's cache (`broker.channels.channel_cache`): that the settings generation
    is still the one the channel was read at, and that the failed-authentication counters
    (`broker.auth.throttle.counters`: key and limit) allow the request. Single Redis only."""

    generation: str
    counters: list[tuple[str, int]]


class ChannelChanged(Exception):
    """A channel or bot changed since the guarded channel was read: nothing was queued; read
    the channel again and send the message unguarded."""


@dataclass(frozen=True)
class Accepted:
    message_id: str
    conversation_id: str
    #: False when the idempotency key was seen before and nothing new was queued.
    queued: bool


@dataclass(frozen=True)
class Queued:
    """The message was queued under `message_id`."""

    message_id: str
    #: The bot turn is to be woken by the caller (the script did not push it itself).
    wake_needed: bool


@dataclass(frozen=True)
class Repeated:
    """The message's key was seen with this same message, recorded as `message_id`: nothing
    was queued."""

    message_id: str
    #: Which of the two idempotency keys was seen (1: the header's, 2: the messageId's).
    seen_key: int


@dataclass(frozen=True)
class KeyReused:
    """The message's key was seen with another message, recorded as `message_id`."""

    message_id: str
    seen_key: int


@dataclass(frozen=True)
class OverLimit:
    """With this message the conversation's sessionData would hold `amount` of `what`."""

    what: Literal["keys", "bytes"]
    amount: int


@dataclass(frozen=True)
class Dedupe:
    """What `ingress.lua` and `ingress_retract.lua` find a repeat by: two keys (the same one
    twice when there is one), and how long they are kept (s; 0: not looked for nor kept)."""

    keys: tuple[str, str]
    ttl: int

    @classmethod
    def of(cls, r: Redis, conversation: Conversation, given: list[str], message_id: str) -> Dedupe:
        """For a message sent with the keys `given` (the Idempotency-Key header's, the
        messageId's), and given `message_id`."""
        if given:
            first, last = (keys.idempotency(conversation.key, key) for key in (given[0], given[-1]))
            return cls((first, last), IDEMPOTENCY_TTL)
        if on_cluster(r):
            # The cluster's client sends the script again when its answer was lost (a master
            # failing over): the message's own id finds that it was queued.
            key = keys.resend_guard(conversation.key, message_id)
            return cls((key, key), CLUSTER_RESEND_WINDOW)
        unread = keys.idempotency(conversation.key, "")
        return cls((unread, unread), 0)


@dataclass(frozen=True)
class GuardChanged:
    """The settings generation moved on since the guarded channel was read."""


@dataclass(frozen=True)
class Throttled:
    """A failed-authentication counter of the guard is at its limit for this much longer."""

    retry_after_ms: int


ScriptAnswer = Queued | Repeated | KeyReused | OverLimit | GuardChanged | Throttled


def decode_answer(answer: Sequence[Any]) -> ScriptAnswer:
    """What `ingress.lua` answered, as one of its outcomes."""
    outcome, *rest = answer
    if outcome == _OVER_LIMIT:
        return OverLimit("keys" if rest[0] == "keys" else "bytes", int(rest[1]))
    if outcome == _CHANGED:
        return GuardChanged()
    if outcome == _THROTTLED:
        return Throttled(int(rest[0]))
    if outcome == _KEY_REUSED:
        return KeyReused(str(rest[0]), int(rest[1]))
    if outcome == 0:
        return Repeated(str(rest[0]), int(rest[2]))
    return Queued(str(rest[0]), rest[1] == _WAKE_NEEDED)


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
    guard: Guard | None = None,
) -> Accepted:
    """Queue `message` (in normal form) for the channel's bot, in one round trip to Redis.

    A bot turn is enqueued only when the conversation has none pending; a running turn
    works through everything that arrives meanwhile. ValidationFailed, with nothing queued,
    when the variables the message sets are over the limits of a message or would take the
    conversation's over its own. With a `guard`, ChannelChanged or RateLimited, with nothing
    queued, when it does not hold.
    """
    sizes = _checked_data_sizes(settings, message)
    if idempotency_key is not None and len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
        raise ValidationFailed(
            f"the Idempotency-Key header has more than {IDEMPOTENCY_KEY_MAX} characters",
            field="Idempotency-Key",
        )
    conversation = Conversation.of(channel.bot_id, channel.version, channel.id, conversation_id)
    # A repeat may carry the header, the messageId or both: each is a key of its own.
    given = [key for key in (idempotency_key, message_id) if key]
    given_id = message_id
    message_id = message_id or ids.new_id("in")
    dedupe = Dedupe.of(r, conversation, given, message_id)
    now = clock.now()
    entry = {
        **message,
        "messageId": message_id,
        "conversationId": conversation_id,
        "channelId": channel.id,
        "receivedAt": now,
    }
    entry_json = json.dumps(entry)
    queue = partial(
        _queue,
        settings,
        conversation,
        entry,
        entry_json,
        sizes,
        dedupe,
        now,
        # Waiting for replicas, the turn is woken once they answered: a turn that took the
        # message meanwhile would keep it from being taken back.
        None if settings.ingress_replicas else sender.ready_list,
        guard,
    )
    # The script's answer says what happened; what follows it on the pipeline is a safety
    # net (the turn's schedule, the listing), whose failure (Redis full, say) must not turn
    # a queued message into a refusal.
    answer, *nets = scripts.execute(r, queue, must=1)
    copies = nets.pop() if settings.ingress_replicas else None
    for failed in (net for net in nets if isinstance(net, Exception)):
        log.warning("message queued, but its turn's schedule or listing was not: %s", failed)
    outcome = decode_answer(answer)
    if not isinstance(outcome, Queued | Repeated):
        _unlist_if_new(r, conversation)
    match outcome:
        case GuardChanged():
            raise ChannelChanged(channel.id)
        case Throttled(retry_after_ms):
            raise throttle.refusal(retry_after_ms)
        case KeyReused(recorded_id, seen_key):
            raise _key_reused(recorded_id, _key_field(seen_key, idempotency_key, given_id))
        case Repeated(recorded_id, seen_key) if given_id and recorded_id != given_id:
            # A key was seen with a message the client named otherwise.
            raise _key_reused(recorded_id, _key_field(seen_key, idempotency_key, given_id))
        case OverLimit(what, amount):
            limit = (
                settings.conversation_data_keys
                if what == "keys"
                else settings.conversation_data_bytes
            )
            raise ValidationFailed(
                f"with this message the session's sessionData would hold {amount} {what}, "
                f"over the limit of {limit} per session",
                field="sessionData",
            )
        case Queued(recorded_id, wake_needed):
            taken_back = (
                TakenBack.NOT_ASKED
                if _copied(settings, copies)
                else _take_back(r, conversation, dedupe, entry_json, recorded_id)
            )
            if wake_needed:
                # Taken back too: the pending flag it set goes with the turn.
                sender.bot_turn(conversation.key)
            if taken_back is TakenBack.YES:
                raise _uncopied("nothing was queued")
            if taken_back is TakenBack.UNKNOWN:
                raise _uncopied("it may have been queued: send it again with the same key")
            return _accepted(channel, conversation_id, recorded_id, queued=True)
        case Repeated(recorded_id) if not given and recorded_id == message_id:
            # Sent again by the cluster's client: the first run queued it, and its answer,
            # which said whether to wake the turn, was lost.
            sender.bot_turn(conversation.key)
            return _accepted(channel, conversation_id, recorded_id, queued=True)
        case Repeated(recorded_id):
            if not _copied(settings, copies):
                # Kept by an earlier request: whether its replicas have it is not known.
                raise _uncopied("it was queued before: send it again with the same key")
            return _accepted(channel, conversation_id, recorded_id, queued=False)


def _accepted(channel: Channel, conversation_id: str, message_id: str, *, queued: bool) -> Accepted:
    logs.event(
        log,
        logging.INFO,
        "message queued" if queued else "message repeated: not queued again",
        messageId=message_id,
        sessionId=conversation_id,
        channelId=channel.id,
        botId=channel.bot_id,
    )
    return Accepted(message_id=message_id, conversation_id=conversation_id, queued=queued)


def _copied(settings: Settings, copies: int | Exception | None) -> bool:
    """Whether `copies`, WAIT's answer (None when none was asked), says that the replicas
    asked for have the message."""
    if copies is None:
        return True
    if isinstance(copies, Exception):
        raise copies
    if copies < settings.ingress_replicas:
        log.warning(
            "%d of the %d replicas asked for had the message in time: answered 503",
            copies,
            settings.ingress_replicas,
        )
        return False
    return True


class TakenBack(enum.Enum):
    """What became of a message that its replicas did not have in time."""

    #: They had it: nothing was asked.
    NOT_ASKED = "not asked"
    #: Taken back: not queued.
    YES = "yes"
    #: A turn that was running for the conversation had it already: acknowledged (answered
    #: 503, it would be queued twice by a retry without a key).
    TURN_HAS_IT = "turn has it"
    #: Redis refused the take-back (without replicas, it refuses every write): it stays.
    UNKNOWN = "unknown"


def _take_back(
    r: Redis,
    conversation: Conversation,
    dedupe: Dedupe,
    entry_json: str,
    message_id: str,
) -> TakenBack:
    try:
        taken_back = scripts.run(
            r,
            "ingress_retract",
            [
                *dedupe.keys,
                keys.conversation_inbox(conversation.key),
            ],
            [entry_json, message_id],
        )
    except REDIS_TROUBLE as exc:
        log.warning("the message could not be taken back (%s): it stays queued", exc)
        return TakenBack.UNKNOWN
    if not taken_back:
        log.warning("a turn took the message before its replicas had it: acknowledged")
        return TakenBack.TURN_HAS_IT
    return TakenBack.YES


def _uncopied(what_became_of_it: str) -> Unavailable:
    return Unavailable(
        "the service's storage could not copy the message to its replicas in time; "
        + what_became_of_it,
        retry_after=UNAVAILABLE_RETRY_AFTER,
    )


def _key_field(seen: int, idempotency_key: str | None, message_id: str | None) -> str:
    """The field that carried the key the ingress script saw (1 or 2 of its two): the
    header's comes first when it was sent, the messageId's last."""
    if seen == 1:
        return "Idempotency-Key" if idempotency_key else "messageId"
    return "messageId" if message_id else "Idempotency-Key"


def _key_reused(recorded_id: str, field: str) -> ValidationFailed:
    return ValidationFailed(
        f"this key was used in the last {IDEMPOTENCY_TTL / 3600:g} hours for another message "
        f"({recorded_id}): a repeat must be the same message, and a new message needs a new key",
        field=field,
    )


def _unlist_if_new(r: Redis, conversation: Conversation) -> None:
    """A refused message leaves no index entry for a conversation it would have started.
    (Its `sb:turns` entry stays: a turn with nothing to do ends at once.)"""
    if not r.exists(keys.conversation_meta(conversation.key)):
        r.zrem(
            keys.bot_conversations(conversation.bot_id, conversation.version),
            conversation.index_member,
        )


def fingerprint(entry: dict[str, Any]) -> str:
    """16 characters that tell one message from another: what the client sent, without what
    ingress adds."""
    sent = {k: v for k, v in entry.items() if k not in ("messageId", "receivedAt")}
    text = json.dumps(sent, sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def data_sizes(message: dict[str, Any]) -> dict[str, int]:
    """Bytes of each variable a message (in normal form) sets: its key and its value as
    compact UTF-8 JSON, from `sessionData` and a postback's `sessionDataToSet`."""
    given = dict(message.get("sessionData") or {})
    given.update({item["key"]: item["value"] for item in message.get("sessionDataToSet") or []})
    return {key: text_size(key) + text_size(compact_json(value)) for key, value in given.items()}


def _checked_data_sizes(settings: Settings, message: dict[str, Any]) -> dict[str, int]:
    sizes = data_sizes(message)
    if len(sizes) > settings.session_data_keys:
        raise ValidationFailed(
            f"sessionData has {len(sizes)} keys, over the limit of "
            f"{settings.session_data_keys} per message",
            field="sessionData",
        )
    if sum(sizes.values()) > settings.session_data_bytes:
        raise ValidationFailed(
            f"sessionData takes {sum(sizes.values())} bytes, over the limit of "
            f"{settings.session_data_bytes} per message",
            field="sessionData",
        )
    return sizes


def _queue(
    settings: Settings,
    conversation: Conversation,
    entry: dict[str, Any],
    entry_json: str,
    sizes: dict[str, int],
    dedupe: Dedupe,
    now: float,
    ready_list: str | None,
    guard: Guard | None,
    pipe: Pipeline,
) -> None:
    """Queue the inbox entry (unless its key was seen), the turn's schedule and the
    conversation's place in the bot's index on a pipeline. With a `ready_list`, the script
    wakes the turn itself: one round trip less for the request."""
    key = conversation.key
    guard_keys: list[str] = []
    guard_args: list[Any] = ["", 0, 0]
    if guard:
        guard_keys = [keys.SETTINGS_GENERATION, *(counter for counter, _ in guard.counters)]
        guard_args = [guard.generation, *(limit for _, limit in guard.counters)]
    scripts.add(
        pipe,
        "ingress",
        [
            *dedupe.keys,
            keys.conversation_inbox(key),
            keys.conversation_pending(key),
            keys.conversation_meta(key),
            keys.conversation_data_sizes(key),
            *guard_keys,
            *([ready_list] if ready_list else []),
        ],
        [
            entry["messageId"],
            entry_json,
            dedupe.ttl,
            math.ceil(settings.conversation_ttl),
            settings.conversation_data_keys,
            settings.conversation_data_bytes,
            json.dumps(sizes),
            key,
            fingerprint(entry) if dedupe.ttl else "",
            *guard_args,
            *ConversationMeta.arrival_fields(conversation),
        ],
    )
    # The schedule is a safety net: should no task be sent, the scheduler wakes the turn.
    schedules.add_turn(pipe, key, now + settings.claim_lease)
    pipe.zadd(
        keys.bot_conversations(conversation.bot_id, conversation.version),
        {conversation.index_member: clock.ms(now)},
    )
    if settings.ingress_replicas:
        # Last, on the same connection: WAIT counts the replicas that have every write of
        # this connection so far (the index's score is new, so a repeat writes too).
        pipe.wait(settings.ingress_replicas, math.ceil(settings.ingress_replica_wait * 1000))
