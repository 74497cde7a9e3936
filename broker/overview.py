"""How the deployment stands now, for operators: queue depths and ages, endpoints by state,
paused conversations, live workers and schedulers, Redis's memory. /metrics, /readyz, the
dashboard and `switchboard status` all read it.

Everything comes from the indexes the work keeps as it happens (`sb:turns`, `sb:due`,
`sb:dead`, `sb:endpoints`, `sb:bots`, the heartbeats), never from a walk over the keyspace:
the cost grows with the work pending (conversations with a turn to run, delivery queues
that hold something) and with the endpoints and bots, read in pipelined chunks. It spans
conversations and deliveries, so it sits above every package.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, get_args

from redis.exceptions import ResponseError

from broker.bots.bot import Version
from broker.conversations.handover import OFFLOAD_TIMER, split_timer
from broker.core import clock, heartbeats, keys
from broker.core.connection import Redis, index_shards, on_cluster
from broker.core.heartbeats import Beat
from broker.delivery.health import EndpointHealth, EndpointState
from broker.delivery.records import split_due_member, split_ref

#: Index entries read per round trip.
_CHUNK = 1000

#: The queues, as /metrics labels them, and what each holds.
QUEUES = {
    "inbound": "user messages waiting for their conversation's bot turn, or for the answer "
    "to its offload",
    "bot_turns": "conversations with a bot turn pending",
    "deliveries": "deliveries not yet delivered nor dead-lettered (ready, retrying or parked)",
    "retries": "delivery queues whose head waits: for its next attempt, or for its "
    "endpoint's open circuit",
    "parked": "deliveries held while their endpoint is disabled",
    "dead_letters": "dead-lettered deliveries, kept for replay",
    "dead_turns": "messages whose bot turn kept failing, parked for replay",
}
ENDPOINT_STATES: tuple[EndpointState, ...] = get_args(EndpointState)


@dataclass(frozen=True)
class Overview:
    at: float
    #: Depth of each queue of `QUEUES`.
    queues: dict[str, int]
    #: Seconds the oldest item ready for work has waited: the oldest user message in an
    #: inbox ("inbound"), the oldest delivery at the head of a queue that waits for no retry,
    #: no open circuit and no disabled endpoint ("deliveries"). 0 when there is none.
    oldest_age: dict[str, float]
    paused_conversations: int
    workers: list[Beat] = field(default_factory=list)
    schedulers: list[Beat] = field(default_factory=list)
    #: Each endpoint's state, oldest endpoint first.
    endpoint_states: dict[str, EndpointState] = field(default_factory=dict)
    #: Celery's last refusal of a task within a minute, {"at", "error"}: retries and work
    #: recovered from dead workers wait for the broker meanwhile.
    broker_trouble: dict[str, str] | None = None
    #: Bytes Redis uses, and its `maxmemory` (0: none), summed over a cluster's masters:
    #: past the limit it refuses writes (`noeviction`), and the ingress answers 503. None
    #: where Redis does not answer `INFO` (a managed Redis may rename it).
    redis_memory: tuple[int, int] | None = None

    @property
    def endpoints(self) -> dict[str, int]:
        """How many endpoints are in each state."""
        by_state = Counter(self.endpoint_states.values())
        return {state: by_state[state] for state in ENDPOINT_STATES}

    def redis_memory_text(self) -> str:
        """Redis's memory in words: "1.2 GB of 16.0 GB (7%)"."""
        if self.redis_memory is None:
            return "unknown (Redis does not answer INFO)"
        used, most = self.redis_memory
        if not most:
            return f"{size_text(used)} (no maxmemory set)"
        return f"{size_text(used)} of {size_text(most)} ({used / most:.0%})"

    def as_json(self) -> dict[str, Any]:
        def beats(found: list[Beat]) -> list[dict[str, Any]]:
            return [{"name": b.name, "lastBeatAt": clock.iso(b.at)} for b in found]

        return {
            "at": clock.iso(self.at),
            "queues": self.queues,
            "oldestAgeSeconds": {name: round(age, 3) for name, age in self.oldest_age.items()},
            "endpoints": self.endpoints,
            "pausedConversations": self.paused_conversations,
            "workers": beats(self.workers),
            "schedulers": beats(self.schedulers),
            "brokerTrouble": self.broker_trouble,
            "redisMemory": self.redis_memory
            and {"usedBytes": self.redis_memory[0], "maxBytes": self.redis_memory[1]},
        }


def _chunks(r: Redis, key: str) -> Iterator[list[tuple[str, float]]]:
    """A sorted set's members with their scores, a chunk at a time."""
    start = 0
    while chunk := r.zrange(key, start, start + _CHUNK - 1, withscores=True):
        yield chunk
        start += len(chunk)


def _sharded_chunks(r: Redis, index: str) -> Iterator[list[tuple[str, float]]]:
    for shard in keys.shards(index, index_shards(r)):
        yield from _chunks(r, shard)


def take(r: Redis) -> Overview:
    """The overview, now."""
    now = clock.now()
    queues = dict.fromkeys(QUEUES, 0)
    oldest = {"inbound": now, "deliveries": now}
    turns_pending = _turns(r, queues, oldest)
    _awaiting_offloads(r, queues, turns_pending)
    states = _endpoints(r, now, queues)
    _deliveries(r, now, states, queues, oldest)
    queues["dead_letters"] = int(r.zcard(keys.DEAD))
    queues["dead_turns"] = int(r.zcard(keys.DEAD_TURNS))
    return Overview(
        at=now,
        queues=queues,
        oldest_age={name: max(now - at, 0.0) for name, at in oldest.items()},
        endpoint_states=states,
        paused_conversations=_paused(r),
        workers=heartbeats.live(r, "worker"),
        schedulers=heartbeats.live(r, "scheduler"),
        broker_trouble=_broker_trouble(r),
        redis_memory=_redis_memory(r),
    )


def size_text(n: int) -> str:
    """Bytes in words: "980 B", "3.4 KB", "1.2 GB"."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _redis_memory(r: Redis) -> tuple[int, int] | None:
    try:
        return _memory_info(r)
    except ResponseError:
        return None


def _memory_info(r: Redis) -> tuple[int, int]:
    if on_cluster(r):
        answer: Any = r.info("memory", target_nodes=r.PRIMARIES)  # type: ignore[attr-defined]
        # One answer per master, by node, unless there is a single one.
        found = [answer] if "used_memory" in answer else list(answer.values())
    else:
        found = [r.info("memory")]
    return sum(int(i["used_memory"]) for i in found), sum(int(i["maxmemory"]) for i in found)


def _broker_trouble(r: Redis) -> dict[str, str] | None:
    raw = r.get(keys.BROKER_TROUBLE)
    return json.loads(raw) if raw else None


def _turns(r: Redis, queues: dict[str, int], oldest: dict[str, float]) -> set[str]:
    """Count the conversations with a turn pending and their messages; returns their keys."""
    pending: set[str] = set()
    for chunk in _sharded_chunks(r, keys.TURNS):
        pending.update(conversation_key for conversation_key, _ in chunk)
        pipe = r.pipeline(transaction=False)
        for conversation_key, _ in chunk:
            pipe.llen(keys.conversation_inbox(conversation_key))
            pipe.lindex(keys.conversation_inbox(conversation_key), 0)
        answers = pipe.execute()
        queues["bot_turns"] += len(chunk)
        for waiting, head in zip(answers[::2], answers[1::2], strict=True):
            queues["inbound"] += int(waiting)
            if head:
                oldest["inbound"] = min(oldest["inbound"], float(json.loads(head)["receivedAt"]))
    return pending


def _awaiting_offloads(r: Redis, queues: dict[str, int], turns_pending: set[str]) -> None:
    """Add the messages that wait for an offload's answer (their conversation has no turn
    pending meanwhile, only its offload timer); they are not ready for work, so they are
    not in the oldest age."""
    for chunk in _sharded_chunks(r, keys.TIMERS):
        awaiting = [
            conversation_key
            for conversation_key, name in (split_timer(member) for member, _ in chunk)
            if name == OFFLOAD_TIMER and conversation_key not in turns_pending
        ]
        if awaiting:
            pipe = r.pipeline(transaction=False)
            for conversation_key in awaiting:
                pipe.llen(keys.conversation_inbox(conversation_key))
            queues["inbound"] += sum(pipe.execute())


def _deliveries(
    r: Redis,
    now: float,
    states: dict[str, EndpointState],
    queues: dict[str, int],
    oldest: dict[str, float],
) -> None:
    # A queue may have two entries for a moment (one claim ending, the next begun), in
    # different chunks: it is counted once.
    seen: set[str] = set()
    for chunk in _sharded_chunks(r, keys.DUE):
        fresh = dict.fromkeys(split_due_member(m)[0] for m, _ in chunk).keys() - seen
        seen |= fresh
        refs = [split_ref(ref) for ref in fresh]
        pipe = r.pipeline(transaction=False)
        for conversation_key, endpoint_id in refs:
            pipe.llen(keys.fifo(conversation_key, endpoint_id))
            pipe.lindex(keys.fifo(conversation_key, endpoint_id), 0)
        answers = pipe.execute()
        heads = []
        for (conversation_key, endpoint_id), waiting, head in zip(
            refs, answers[::2], answers[1::2], strict=True
        ):
            queues["deliveries"] += int(waiting)
            if head:
                heads.append((keys.delivery(conversation_key, head), endpoint_id))
        pipe = r.pipeline(transaction=False)
        for record, _ in heads:
            pipe.hmget(record, "createdAt", "nextAttemptAt")
        for (_, endpoint_id), (created_at, next_attempt_at) in zip(
            heads, pipe.execute(), strict=True
        ):
            if created_at is None:
                continue  # its record expired; the worker drops it
            held = states.get(endpoint_id) in ("circuit_open", "disabled")
            if held or (next_attempt_at and float(next_attempt_at) > now):
                queues["retries"] += 1
            else:
                oldest["deliveries"] = min(oldest["deliveries"], float(created_at))


def _endpoints(r: Redis, now: float, queues: dict[str, int]) -> dict[str, EndpointState]:
    """Each endpoint's state; counts the deliveries parked for disabled ones."""
    states: dict[str, EndpointState] = {}
    for chunk in _chunks(r, keys.ENDPOINTS):
        pipe = r.pipeline(transaction=False)
        for endpoint_id, _ in chunk:
            pipe.hgetall(keys.endpoint_health(endpoint_id))
            pipe.smembers(keys.endpoint_parked(endpoint_id))
        answers = pipe.execute()
        parked: list[str] = []
        for (endpoint_id, _), raw, refs in zip(chunk, answers[::2], answers[1::2], strict=True):
            states[endpoint_id] = EndpointHealth.from_redis(raw).state_at(now)
            parked += refs
        pipe = r.pipeline(transaction=False)
        for ref in parked:
            pipe.llen(keys.fifo(*split_ref(ref)))
        waiting = sum(int(n) for n in pipe.execute())
        queues["parked"] += waiting
        queues["deliveries"] += waiting
    return states


def _paused(r: Redis) -> int:
    total = 0
    versions: tuple[Version, ...] = get_args(Version)
    for chunk in _chunks(r, keys.BOTS):
        pipe = r.pipeline(transaction=False)
        for bot_id, _ in chunk:
            for version in versions:
                pipe.zcard(keys.bot_paused(bot_id, version))
        total += sum(int(n) for n in pipe.execute())
    return total
