"""Schedules: sorted sets of work by the time it is due, handed out by the scheduler."""

from __future__ import annotations

from broker.core import clock, scripts
from broker.core.connection import Redis


def claim(r: Redis, schedule_key: str, lease: float, limit: int) -> list[str]:
    """Members of a schedule that are due, each pushed out by `lease` so no one else takes it."""
    now = clock.now()
    return list(scripts.run(r, "claim_due", [schedule_key], [now, now + lease, limit]))
