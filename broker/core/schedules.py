"""Schedules: sorted sets of work by the time it is due, handed out by the scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from broker.core import clock, keys, scripts
from broker.core.connection import Pipeline, Redis, index_shards


def add_turn(pipe: Pipeline, conversation_key: str, at: float) -> None:
    """Put a conversation's bot turn on the schedule, due at `at`, unless it is on it."""
    pipe.zadd(keys.turns(conversation_key, index_shards(pipe)), {conversation_key: at}, nx=True)


@dataclass(frozen=True)
class Taken:
    """What a taking script took from each shard of a schedule (nothing from one that
    failed), and the first failure."""

    by_shard: list[list[str]]
    error: Exception | None = None

    @property
    def members(self) -> list[str]:
        return [member for taken in self.by_shard for member in taken]

    def raise_error(self) -> None:
        """Raise the first failure, once what was taken has been handed out."""
        if self.error is not None:
            raise self.error


def take_due(r: Redis, script: str, shards: list[str], args: list[Any]) -> Taken:
    """Run `script` (`claim_due`, `due_hand_out`: each takes due members off its shard under
    a new lease) with `args` on every shard, in one round trip. A shard's failure (its node
    is down) takes nothing there and does not lose what the others took: raised, it would
    have left their members unhanded until their new leases ran out. A shard whose node lost
    its scripts is sent again alone."""
    answers = _on_shards(r, script, shards, args)
    reloaded = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
    if reloaded:
        scripts.load_all(r)
        again = _on_shards(r, script, [shards[i] for i in reloaded], args)
        for i, answer in zip(reloaded, again, strict=True):
            answers[i] = answer
    errors = [answer for answer in answers if isinstance(answer, Exception)]
    return Taken(
        [[] if isinstance(answer, Exception) else list(answer) for answer in answers],
        errors[0] if errors else None,
    )


def _on_shards(r: Redis, script: str, shards: list[str], args: list[Any]) -> list[Any]:
    pipe = r.pipeline(transaction=False)
    for shard in shards:
        scripts.add(pipe, script, [shard], args)
    return list(pipe.execute(raise_on_error=False))


def claim(r: Redis, schedule: str, lease: float, limit: int) -> Taken:
    """Members of a schedule (TURNS or TIMERS) that are due, at most `limit` from each of its
    shards, each pushed out by `lease` so no one else takes it; every shard in one round
    trip (`take_due`)."""
    now = clock.now()
    shards = keys.shards(schedule, index_shards(r))
    return take_due(r, "claim_due", shards, [now, now + lease, limit])
