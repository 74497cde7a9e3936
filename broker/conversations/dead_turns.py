"""Dead letters of turns: nothing fails a bot turn forever.

A turn that raises (for a reason of its own, not Redis's), or that loses its conversation's
lock while it runs (it outlived its lease: nothing of it is saved), is tried again after
SWITCHBOARD_TURN_RETRY_DELAY, one item at a time: the conversation's first waiting signal,
or else its first waiting message. When the same item has failed
SWITCHBOARD_TURN_ATTEMPTS times, it is parked here with the error of its last failure,
and the conversation goes on with what follows it. An operator lists the dead letters,
replays one (it goes back to the end of its conversation's inbox) or discards it.

A dead letter is the hash `sb:{c:<conversation key>}:dead-turn:<id>`, kept
SWITCHBOARD_DEAD_RETENTION, listed on `sb:dead-turns` and on its bot's `dead-turns`
index; its id names its conversation, as a delivery id does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from broker.bots.engine import RUN_FAULTS
from broker.conversations.conversation import ConversationMeta
from broker.core import clock, ids, keys, logs, schedules, scripts
from broker.core.connection import HashFields, Pipeline, Redis, index_shards
from broker.core.errors import NotFound, SwitchboardError
from broker.core.sender import TaskSender
from broker.core.settings import Settings

log = logging.getLogger(__name__)

ItemKind = Literal["message", "signal"]

#: What a turn fails with by a limit or a rule it broke, not by a bug: its text says all.
EXPECTED = (*RUN_FAULTS, SwitchboardError)
#: How much of a failure's text a dead letter keeps.
_ERROR_CHARS = 2000
#: Dead letters removed per round trip when their bot goes.
_CHUNK = 500


@dataclass(frozen=True)
class Item:
    """One waiting message or signal of a conversation, as its list holds it."""

    kind: ItemKind
    raw: str

    @property
    def blame(self) -> str:
        """What a failure is counted against: the item itself, whatever it holds."""
        return f"{self.kind}:{hashlib.sha256(self.raw.encode()).hexdigest()[:16]}"

    def ids(self) -> dict[str, str]:
        """The ids the item holds (`messageId`, a signal's `deliveryId`), as far as it parses."""
        try:
            found = json.loads(self.raw)
        except ValueError:
            return {}
        if not isinstance(found, dict):
            return {}
        return {name: str(found[name]) for name in ("messageId", "deliveryId") if name in found}


@dataclass(frozen=True)
class DeadTurn:
    id: str
    bot_id: str
    version: str
    channel_id: str
    conversation_id: str
    kind: ItemKind
    #: The message or signal as its list held it (JSON text).
    item: str
    error: str
    attempts: int
    dead_at: float

    def to_redis(self) -> HashFields:
        return {
            "id": self.id,
            "botId": self.bot_id,
            "version": self.version,
            "channelId": self.channel_id,
            "conversationId": self.conversation_id,
            "kind": self.kind,
            "item": self.item,
            "error": self.error,
            "attempts": self.attempts,
            "deadAt": repr(self.dead_at),
        }

    @classmethod
    def from_redis(cls, raw: Mapping[str, str]) -> DeadTurn:
        return cls(
            id=raw["id"],
            bot_id=raw["botId"],
            version=raw["version"],
            channel_id=raw["channelId"],
            conversation_id=raw["conversationId"],
            kind="signal" if raw["kind"] == "signal" else "message",
            item=raw["item"],
            error=raw["error"],
            attempts=int(raw["attempts"]),
            dead_at=float(raw["deadAt"]),
        )

    def view(self) -> dict[str, Any]:
        """As the API shows it: the item as JSON where it parses, else its text."""
        try:
            item: Any = json.loads(self.item)
        except ValueError:
            item = self.item
        return {
            "id": self.id,
            "botId": self.bot_id,
            "version": self.version,
            "channelId": self.channel_id,
            "sessionId": self.conversation_id,
            "kind": self.kind,
            "item": item,
            "error": self.error,
            "attempts": self.attempts,
            "deadAt": clock.iso(self.dead_at),
        }


def failed(
    r: Redis,
    settings: Settings,
    lock_token: str,
    meta: ConversationMeta,
    item: Item | None,
    exc: BaseException,
) -> bool:
    """Count a failed turn. `item` is what the turn took, when it took one thing only.

    True when the turn may go on at once (the item was parked, or the failure must be pinned
    on one item); False when it waits for its retry, on `sb:turns`.
    """
    conversation = meta.conversation
    error = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
    failures = 1 if item is None or meta.failed_on != item.blame else meta.failures + 1
    logs.event(
        log,
        logging.WARNING,
        "bot turn failed",
        **_ids(meta, item),
        attempt=failures,
        error=error,
        # A limit of the definition's or a refusal of ours says all in its text.
        exc_info=None if isinstance(exc, EXPECTED) else exc,
    )
    if item is None:
        meta.failures, meta.failed_on = 1, ""
        _write_failures(r, meta)
        return True
    if failures >= settings.turn_attempts:
        _park(r, settings, lock_token, meta, item, error, failures)
        return True
    meta.failures, meta.failed_on = failures, item.blame
    _write_failures(r, meta)
    r.zadd(
        keys.turns(conversation.key, index_shards(r)),
        {conversation.key: clock.now() + settings.turn_retry_delay},
    )
    return False


def lost(r: Redis, settings: Settings, meta: ConversationMeta, item: Item | None) -> None:
    """Count a turn that lost its conversation's lock while it ran (it ran past its lease, as
    a worker held up by a slow regex does): nothing of it was saved. Without the lock it
    cannot park its item; the next turn that takes the conversation does (`park_exhausted`).
    Another worker may hold the conversation by now: should its turn succeed meanwhile, it
    clears this count, or a later success does."""
    logs.event(
        log,
        logging.WARNING,
        "bot turn lost its lock while it ran (longer than its lease): nothing was saved",
        **_ids(meta, item),
        leaseSeconds=settings.claim_lease,
    )
    if item is None:
        meta.failures, meta.failed_on = 1, ""
    else:
        meta.failures = meta.failures + 1 if meta.failed_on == item.blame else 1
        meta.failed_on = item.blame
    _write_failures(r, meta)


def _write_failures(r: Redis, meta: ConversationMeta) -> None:
    """Save the meta's failure count, unless the conversation is gone (`meta_update`)."""
    fields = [part for pair in meta.failure_fields().items() for part in pair]
    scripts.run(r, "meta_update", [keys.conversation_meta(meta.conversation.key)], fields)


def park_exhausted(
    r: Redis, settings: Settings, lock_token: str, meta: ConversationMeta, item: Item | None
) -> bool:
    """Park `item` before its turn runs when it already failed SWITCHBOARD_TURN_ATTEMPTS
    times without being parked (its last turns lost their lock: `lost`); True when it was."""
    if item is None or meta.failed_on != item.blame or meta.failures < settings.turn_attempts:
        return False
    error = (
        f"LeaseLost: the turn ran longer than its lease ({settings.claim_lease} s) and lost "
        "its lock; nothing of it was saved"
    )
    _park(r, settings, lock_token, meta, item, error, meta.failures)
    return True


def _park(
    r: Redis,
    settings: Settings,
    lock_token: str,
    meta: ConversationMeta,
    item: Item,
    error: str,
    attempts: int,
) -> None:
    conversation = meta.conversation
    now = clock.now()
    dead = DeadTurn(
        id=ids.dead_turn_id(conversation.key),
        bot_id=conversation.bot_id,
        version=conversation.version,
        channel_id=conversation.channel_id,
        conversation_id=conversation.conversation_id,
        kind=item.kind,
        item=item.raw,
        error=error,
        attempts=attempts,
        dead_at=now,
    )
    # The indexes first (not in the conversation's slot): listings skip an id whose record
    # never came.
    pipe = r.pipeline(transaction=False)
    pipe.zadd(keys.DEAD_TURNS, {dead.id: clock.ms(now)})
    pipe.zadd(keys.bot_dead_turns(conversation.bot_id), {dead.id: clock.ms(now)})
    pipe.execute()
    source = (
        keys.conversation_inbox(conversation.key)
        if item.kind == "message"
        else keys.conversation_signals(conversation.key)
    )
    parked = scripts.run(
        r,
        "turn_park",
        [
            source,
            keys.conversation_meta(conversation.key),
            keys.dead_turn(conversation.key, dead.id),
            keys.conversation_lock(conversation.key),
        ],
        [
            item.raw,
            lock_token,
            math.ceil(settings.dead_retention),
            *(str(part) for pair in dead.to_redis().items() for part in pair),
        ],
    )
    if parked:
        logs.event(
            log,
            logging.ERROR,
            f"bot turn: a {item.kind} failed {attempts} times and is parked",
            **_ids(meta, item),
            deadTurnId=dead.id,
            error=error,
        )


def _ids(meta: ConversationMeta, item: Item | None) -> dict[str, Any]:
    """The ids a line about a turn names: its conversation's, and its item's when it took
    one thing only (a message's id, or the delivery a signal is about)."""
    named = item.ids() if item is not None else {}
    return {
        **meta.conversation.log_fields(),
        "messageId": named.get("messageId"),
        "deliveryId": named.get("deliveryId"),
    }


def load(r: Redis, dead_turn_id: str) -> DeadTurn:
    conversation_key = ids.conversation_of_dead_turn(dead_turn_id)
    raw = r.hgetall(keys.dead_turn(conversation_key, dead_turn_id))
    if not raw:
        raise NotFound(f"no dead letter of turns {dead_turn_id!r}")
    return DeadTurn.from_redis(raw)


def list_page(
    r: Redis, *, offset: int, limit: int, bot_id: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """A page of dead letters of turns, newest first (only one bot's when it is named)."""
    index = keys.bot_dead_turns(bot_id) if bot_id else keys.DEAD_TURNS
    pipe = r.pipeline(transaction=False)
    pipe.zrevrange(index, offset, offset + limit - 1)
    pipe.zcard(index)
    chosen, total = pipe.execute()
    pipe = r.pipeline(transaction=False)
    for dead_turn_id in chosen:
        pipe.hgetall(keys.dead_turn(ids.conversation_of_dead_turn(dead_turn_id), dead_turn_id))
    return [DeadTurn.from_redis(raw).view() for raw in pipe.execute() if raw], int(total)


def replay(r: Redis, settings: Settings, sender: TaskSender, dead_turn_id: str) -> None:
    """Put the parked item back at the end of its conversation's inbox (or signals), and
    wake its bot turn; NotFound when there is no such dead letter."""
    dead = load(r, dead_turn_id)
    conversation_key = ids.conversation_of_dead_turn(dead_turn_id)
    target = (
        keys.conversation_inbox(conversation_key)
        if dead.kind == "message"
        else keys.conversation_signals(conversation_key)
    )

    def schedule(pipe: Pipeline) -> None:
        schedules.add_turn(pipe, conversation_key, clock.now() + settings.claim_lease)

    def put_back(pipe: Pipeline) -> None:
        scripts.add(
            pipe,
            "turn_replay",
            [
                keys.dead_turn(conversation_key, dead_turn_id),
                target,
                keys.conversation_pending(conversation_key),
            ],
            [dead.kind, math.ceil(settings.conversation_ttl)],
        )

    # The schedule first (not in the conversation's slot): a crash after it runs a turn for
    # nothing at worst.
    _, wake = scripts.execute_in_order(r, schedule, put_back)
    if wake == -1:
        raise NotFound(f"no dead letter of turns {dead_turn_id!r}")
    _unindex(r, dead)
    if wake:
        sender.bot_turn(conversation_key)


def discard(r: Redis, dead_turn_id: str) -> None:
    """Forget a dead letter of turns; NotFound when there is no such one."""
    dead = load(r, dead_turn_id)
    r.delete(keys.dead_turn(ids.conversation_of_dead_turn(dead_turn_id), dead_turn_id))
    _unindex(r, dead)


def remove_all(r: Redis, bot_id: str) -> None:
    """Forget every dead letter of turns of a bot (when the bot goes)."""
    index = keys.bot_dead_turns(bot_id)
    while chunk := r.zrange(index, 0, _CHUNK - 1):
        pipe = r.pipeline(transaction=False)
        for dead_turn_id in chunk:
            pipe.delete(keys.dead_turn(ids.conversation_of_dead_turn(dead_turn_id), dead_turn_id))
        pipe.zrem(keys.DEAD_TURNS, *chunk)
        pipe.zrem(index, *chunk)
        pipe.execute()


def housekeep(r: Redis, settings: Settings) -> None:
    """Drop index entries of dead letters that expired."""
    oldest = clock.now_ms() - settings.dead_retention * 1000
    r.zremrangebyscore(keys.DEAD_TURNS, "-inf", oldest)
    for bot_id in r.zrange(keys.BOTS, 0, -1):
        r.zremrangebyscore(keys.bot_dead_turns(bot_id), "-inf", oldest)


def _unindex(r: Redis, dead: DeadTurn) -> None:
    pipe = r.pipeline(transaction=False)
    pipe.zrem(keys.DEAD_TURNS, dead.id)
    pipe.zrem(keys.bot_dead_turns(dead.bot_id), dead.id)
    pipe.execute()
