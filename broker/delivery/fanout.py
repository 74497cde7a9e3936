"""Fan-out: a bot turn's memory, transcript and deliveries, committed at once.

Many turns commit in one round trip: the index entries outside the conversations' hash
slots go first (so that a crash between them and a turn's script leaves only entries to
be skipped or queues found empty), then one `turn_commit.lua` per conversation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from broker.core import clock, ids, keys, scripts
from broker.core.connection import HashFields, Pipeline, Redis, index_shards
from broker.core.defaults import SESSION_DELIVERIES, TRANSCRIPT_MAX
from broker.core.errors import LockLost
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from broker.delivery.endpoint import delivery_lease
from broker.delivery.records import Delivery, due_member, queue_ref


@dataclass
class TurnCommit:
    """What one turn of one conversation saves."""

    conversation_key: str
    #: Inbox messages and signals the turn used up.
    trim: int = 0
    trim_signals: int = 0
    meta: HashFields = field(default_factory=dict)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    def queues(self) -> dict[str, list[Delivery]]:
        """The deliveries by queue ("<conversation key>|<endpoint id>"), in order."""
        found: dict[str, list[Delivery]] = {}
        for delivery in self.deliveries:
            found.setdefault(queue_ref(self.conversation_key, delivery.endpoint_id), []).append(
                delivery
            )
        return found


@dataclass(frozen=True)
class Committed:
    #: The turn's lock was not ours any more: nothing was saved.
    lost: bool
    #: The turn ended: its pending flag is cleared and its lock let go.
    ended: bool
    #: Queues that were empty before the turn, now held with the claim token, with their
    #: deliveries.
    claimed: dict[str, list[Delivery]]
    #: Entries on `sb:due` written for queues that were not empty (someone else has them)
    #: or not written to at all (the lock was lost).
    stale: list[str]
    #: Queues that were not empty, that no one held, and whose head is due: a failover may
    #: have lost the write that had them looked at (their entry went, the queue was left as
    #: it was). Their entries on `sb:due` stay; the caller hands them to a worker, which
    #: claims them with the claim token and reads their head.
    unheld: list[str] = field(default_factory=list)


def commit_turns(
    r: Redis,
    settings: Settings,
    commits: Sequence[TurnCommit],
    *,
    lock_token: str,
    claim_token: str,
    end_turns: bool,
) -> list[Committed]:
    """Save several turns in one round trip, each only while its conversation's lock holds
    `lock_token`, claiming with `claim_token` the queues that were empty. With `end_turns`,
    each turn ends if nothing is left for it.

    Every queue a turn adds to is first put on `sb:due` under the claim, a lease ahead: a
    crash before the worker takes it leaves it to the scheduler. The entries of queues that
    someone else has are the caller's to remove (`Committed.stale`).

    `claim_token` also names the commits: one sent again with it within a lease (redis-py
    sends a command again when its answer was lost, as when a master fails over) is
    answered as it was the first time, and written once.
    """
    if not commits:
        return []
    lease_ms = clock.ms(delivery_lease(settings))
    head = [
        lock_token,
        claim_token,
        lease_ms,
        math.ceil(settings.conversation_ttl),
        int(end_turns),
        settings.transcript_bytes,
        clock.now(),
    ]

    def indexes(pipe: Pipeline) -> None:
        _add_indexes(pipe, settings, commits, claim_token)

    def scripts_of_turns(pipe: Pipeline) -> None:
        for commit in commits:
            _add_commit(pipe, commit, head)

    answers = scripts.execute_in_order(r, indexes, scripts_of_turns, answered=len(commits))
    answers = answers[-len(commits) :]  # the turns' own
    committed = [
        None if isinstance(answer, Exception) else _committed(commit, answer, claim_token)
        for commit, answer in zip(commits, answers, strict=True)
    ]
    lost = [commit for commit, done in zip(commits, committed, strict=True) if done and done.lost]
    if lost:
        _forget_listings(r, lost)
    errors = [answer for answer in answers if isinstance(answer, Exception)]
    if not errors:
        return [done for done in committed if done is not None]
    if len(errors) == len(commits):
        raise errors[0]
    raise PartlyCommitted(errors[0], committed)


class PartlyCommitted(Exception):
    """Some turns of a batch were saved and others were not (their node of a cluster is down,
    or their script failed): `done` holds each turn's `Committed`, None for those not
    saved, and `error` the first failure."""

    def __init__(self, error: Exception, done: list[Committed | None]) -> None:
        super().__init__(str(error))
        self.error = error
        self.done = done


def _committed(commit: TurnCommit, answer: list[Any], claim_token: str) -> Committed:
    queues = list(commit.queues().items())
    if answer[0] == -1:
        return Committed(True, False, {}, [due_member(ref, claim_token) for ref, _ in queues])
    ended, fresh, claimed, unheld = answer
    return Committed(
        False,
        bool(ended),
        dict(queues[position - 1] for position in claimed),
        [
            due_member(ref, claim_token)
            for position, (ref, _) in enumerate(queues, 1)
            if position not in fresh and position not in unheld
        ],
        [queues[position - 1][0] for position in unheld],
    )


def commit_turn(
    r: Redis, settings: Settings, sender: TaskSender, commit: TurnCommit, lock_token: str
) -> None:
    """Save one turn whose caller holds the conversation's lock with `lock_token` (an agent
    action), and hand the queues that were empty to the workers. LockLost, with nothing
    saved, when the lock is no longer held."""
    token = ids.random_hex(8)
    (committed,) = commit_turns(
        r, settings, [commit], lock_token=lock_token, claim_token=token, end_turns=False
    )
    for shard, stale in keys.by_shard(keys.DUE, committed.stale, index_shards(r)).items():
        r.zrem(shard, *stale)
    if committed.lost:
        raise LockLost(
            f"the lock of conversation {commit.conversation_key} was lost; nothing was saved"
        )
    if committed.claimed or committed.unheld:
        sender.deliver([due_member(ref, token) for ref in [*committed.claimed, *committed.unheld]])


def _add_indexes(
    pipe: Pipeline, settings: Settings, commits: Sequence[TurnCommit], claim_token: str
) -> None:
    """The delivery listings and each queue's entry on `sb:due`, for every turn at once."""
    created: dict[str | bytes, bytes | float | int | str] = {}
    by_endpoint: dict[str, dict[str | bytes, bytes | float | int | str]] = {}
    members: list[str] = []
    for commit in commits:
        for delivery in commit.deliveries:
            score = clock.ms(delivery.created_at)
            created[delivery.id] = score
            by_endpoint.setdefault(delivery.endpoint_id, {})[delivery.id] = score
        members += (due_member(ref, claim_token) for ref in commit.queues())
    if not created:
        return
    pipe.zadd(keys.DELIVERIES, created)
    for endpoint_id, entries in by_endpoint.items():
        pipe.zadd(keys.endpoint_deliveries(endpoint_id), entries)
    lease_end = clock.now() + delivery_lease(settings)
    for shard, queued in keys.by_shard(keys.DUE, members, index_shards(pipe)).items():
        pipe.zadd(shard, dict.fromkeys(queued, lease_end))


def _forget_listings(r: Redis, commits: Sequence[TurnCommit]) -> None:
    """Take out of the delivery listings the deliveries of turns that were not saved (their
    lock was lost: their bot was removed, say), which `_add_indexes` listed beforehand."""
    by_endpoint: dict[str, list[str]] = {}
    for commit in commits:
        for delivery in commit.deliveries:
            by_endpoint.setdefault(delivery.endpoint_id, []).append(delivery.id)
    if not by_endpoint:
        return
    pipe = r.pipeline(transaction=False)
    pipe.zrem(keys.DELIVERIES, *(i for listed in by_endpoint.values() for i in listed))
    for endpoint_id, listed in by_endpoint.items():
        pipe.zrem(keys.endpoint_deliveries(endpoint_id), *listed)
    pipe.execute()


def _add_commit(pipe: Pipeline, commit: TurnCommit, head: list[Any]) -> None:
    key = commit.conversation_key
    queues = commit.queues()
    script_keys = [
        keys.conversation_meta(key),
        keys.conversation_inbox(key),
        keys.conversation_transcript(key),
        keys.conversation_signals(key),
        keys.conversation_pending(key),
        keys.conversation_lock(key),
        keys.conversation_data_sizes(key),
    ]
    args: list[Any] = [
        commit.trim,
        commit.trim_signals,
        TRANSCRIPT_MAX,
        *head,
        keys.delivery_prefix(key),
    ]
    meta = [str(part) for pair in commit.meta.items() for part in pair]
    entries = [json.dumps(item, ensure_ascii=False) for item in commit.transcript]
    args += [len(meta), *meta, len(entries), *entries, len(queues)]
    records: list[Any] = []
    record_keys: list[str] = []
    index: list[Any] = []
    for deliveries in queues.values():
        endpoint_id = deliveries[0].endpoint_id
        script_keys += [keys.fifo(key, endpoint_id), keys.fifo_lock(key, endpoint_id)]
        args += [len(deliveries), *(d.id for d in deliveries)]
        for delivery in deliveries:
            fields = delivery.to_fields()
            records += [len(fields), *fields]
            record_keys.append(keys.delivery(key, delivery.id))
            # Not whole milliseconds: a turn's replies keep their order.
            index += [delivery.created_at * 1000, delivery.id]
    scripts.add(
        pipe,
        "turn_commit",
        [
            *script_keys,
            *record_keys,
            keys.conversation_deliveries(key),
            keys.conversation_last_commit(key),
        ],
        [*args, *records, len(index), *index, SESSION_DELIVERIES],
    )
