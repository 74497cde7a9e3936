"""Schedules: sorted sets of work by the time it is due, handed out by the scheduler."""

from __future__ import annotations

from broker.core import clock, keys, scripts
from broker.core.connection import Pipeline, Redis, index_shards


def add_turn(pipe: Pipeline, conversation_key: str, at: float) -> None:
    """Put a conversation's bot turn on the schedule, due at `at`, unless it is on it."""
    pipe.zadd(keys.turns(conversation_key, index_shards(pipe)), {conversation_key: at}, nx=True)


def claim(r: Redis, schedule_key: str, lease: float, limit: int) -> list[str]:
    """Members of a schedule that are due, each pushed out by `lease` so no one else takes it."""
    now = clock.now()
    return list(scripts.run(r, "claim_due", [schedule_key], [now, now + lease, limit]))
