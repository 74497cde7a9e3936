"""Schedules: sorted sets of work by the time it is due, handed out by the scheduler."""

from __future__ import annotations

from broker.core import clock, keys, scripts
from broker.core.connection import Pipeline, Redis, index_shards


def add_turn(pipe: Pipeline, conversation_key: str, at: float) -> None:
    """Put a conversation's bot turn on the schedule, due at `at`, unless it is on it."""
    pipe.zadd(keys.turns(conversation_key, index_shards(pipe)), {conversation_key: at}, nx=True)


def claim(r: Redis, schedule: str, lease: float, limit: int) -> list[str]:
    """Members of a schedule (TURNS or TIMERS) that are due, at most `limit` from each of its
    shards, each pushed out by `lease` so no one else takes it; every shard in one round
    trip. Should a shard's script be sent again (Redis lost its scripts), what the first
    send claimed comes due again when its lease runs out."""
    now = clock.now()
    shards = keys.shards(schedule, index_shards(r))

    def build(pipe: Pipeline) -> None:
        for shard in shards:
            scripts.add(pipe, "claim_due", [shard], [now, now + lease, limit])

    return [member for claimed in scripts.execute(r, build) for member in claimed]
