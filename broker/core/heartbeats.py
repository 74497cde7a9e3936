"""Heartbeats in Redis, so that /readyz and the operators' views can tell whether workers and a
scheduler are alive.

Each role has one index, `sb:heartbeats:<role>`: process name -> time of its last beat. A
beat writes its own entry and drops those that stopped beating, so reading who is alive is
one read of a small index, never a walk over the keyspace. The times are Redis's (`TIME`),
not the processes': one host's clock off by more than HEARTBEAT_TTL made its process, or
every other, look dead. A process whose clock is off from Redis's by more than
CLOCK_SKEW_WARNING says so in its log and goes by Redis's clock from then on
(`clock.follow`): the times it writes elsewhere (retries due, claims' ends, the signatures'
`webhook-timestamp`) are then the others'. A worker ten minutes ahead held every worker's
retries back by ten minutes, and receivers refused its signatures.

The beats come from a thread of their own, which would go on beating for a process whose
loops are stuck; so each loop marks its passes (`Progress`), and the thread stops beating
while one has not gone round for a while.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from broker.core import clock, keys, scripts
from broker.core.connection import Redis
from broker.core.defaults import CLOCK_SKEW_WARNING, HEARTBEAT_TTL

log = logging.getLogger(__name__)

ROLES = ("worker", "scheduler")


@dataclass(frozen=True)
class Beat:
    """A live process of a role, and when it last beat (s)."""

    role: str
    name: str
    at: float


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(r: Redis, role: str, name: str) -> float:
    """Beat; how far this host's clock is ahead of Redis's (s, negative when behind)."""
    redis_now = float(scripts.run(r, "heartbeat", [keys.heartbeats(role)], [name, HEARTBEAT_TTL]))
    return clock.host_now() - redis_now


def stop(r: Redis, role: str, name: str) -> None:
    r.zrem(keys.heartbeats(role), name)


def live(r: Redis, role: str) -> list[Beat]:
    """The processes of a role that beat recently, the latest beat first; `at` on this
    process's clock."""
    redis_now, *found = scripts.run(r, "heartbeats_live", [keys.heartbeats(role)], [HEARTBEAT_TTL])
    ahead = clock.now() - float(redis_now)
    return [
        Beat(role, name, float(at) + ahead)
        for name, at in zip(found[::2], found[1::2], strict=True)
    ]


def alive(r: Redis, role: str) -> int:
    """How many processes of a role have beaten recently."""
    return len(live(r, role))


class Progress:
    """When each of a process's loops last went round (`mark`, by name), so that its
    heartbeat stops while one has not for `stuck_after` seconds (`stuck`)."""

    def __init__(self, stuck_after: float, now: Callable[[], float] = time.monotonic) -> None:
        self.stuck_after = stuck_after
        self._now = now
        self._marks: dict[str, float] = {}
        self._lock = threading.Lock()

    def mark(self, loop: str) -> None:
        with self._lock:
            self._marks[loop] = self._now()

    def stuck(self) -> list[str]:
        """The loops that have not gone round for `stuck_after` seconds."""
        now = self._now()
        with self._lock:
            return [loop for loop, at in self._marks.items() if now - at > self.stuck_after]


def follow_redis(role: str, ahead: float, skewed: bool) -> bool:
    """Go by Redis's clock while this host's is more than CLOCK_SKEW_WARNING `ahead` of it
    (or behind), by the host's own otherwise, and log when that changes; whether it is off
    now."""
    off = abs(ahead) > CLOCK_SKEW_WARNING
    clock.follow(-ahead if off else 0.0)
    if off and not skewed:
        log.warning(
            "%s clock is %.1f s %s Redis's: this process goes by Redis's clock; keep the "
            "hosts' clocks in sync (NTP)",
            role,
            abs(ahead),
            "ahead of" if ahead > 0 else "behind",
        )
    elif skewed and not off:
        log.warning("%s clock agrees with Redis's again: this process goes by its own", role)
    return off


def start_thread(r: Redis, role: str, progress: Progress | None = None) -> threading.Event:
    """Beat every few seconds in a daemon thread, while no loop of `progress` is stuck; set
    the returned event to stop."""
    stop_beating = threading.Event()
    name = process_name()
    watched = progress or Progress(0.0)  # no loop marks it: never stuck

    def loop() -> None:
        withheld = skewed = False
        while not stop_beating.is_set():
            stuck = watched.stuck()
            if stuck and not withheld:
                log.error(
                    "%s heartbeat withheld: its %s loop has not gone round for %g s",
                    role,
                    ", ".join(stuck),
                    watched.stuck_after,
                )
            elif withheld and not stuck:
                log.warning("%s heartbeat beats again: its loops go round", role)
            withheld = bool(stuck)
            if not stuck:
                # Redis is away: readiness says so, and the thread beats again once it is back.
                with contextlib.suppress(OSError, RedisError):
                    skewed = follow_redis(role, beat(r, role, name), skewed)
            stop_beating.wait(HEARTBEAT_TTL / 3)
        with contextlib.suppress(OSError, RedisError):
            stop(r, role, name)

    threading.Thread(target=loop, name=f"{role}-heartbeat", daemon=True).start()
    return stop_beating
