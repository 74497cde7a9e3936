"""Heartbeats in Redis, so that /readyz and the operators' views can tell whether workers and a
scheduler are alive.

Each role has one index, `sb:heartbeats:<role>`: process name -> time of its last beat. A
beat writes its own entry and drops those that stopped beating, so reading who is alive is
one `ZRANGEBYSCORE`, never a walk over the keyspace.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass

from redis.exceptions import RedisError

from broker.core import clock, keys
from broker.core.connection import Redis
from broker.core.defaults import HEARTBEAT_TTL

ROLES = ("worker", "scheduler")


@dataclass(frozen=True)
class Beat:
    """A live process of a role, and when it last beat (s)."""

    role: str
    name: str
    at: float


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(r: Redis, role: str, name: str) -> None:
    now = clock.now()
    pipe = r.pipeline(transaction=False)
    pipe.zadd(keys.heartbeats(role), {name: now})
    pipe.zremrangebyscore(keys.heartbeats(role), "-inf", now - HEARTBEAT_TTL)
    pipe.execute()


def stop(r: Redis, role: str, name: str) -> None:
    r.zrem(keys.heartbeats(role), name)


def live(r: Redis, role: str) -> list[Beat]:
    """The processes of a role that beat recently, the latest beat first."""
    found = r.zrevrangebyscore(
        keys.heartbeats(role), "+inf", clock.now() - HEARTBEAT_TTL, withscores=True
    )
    return [Beat(role, name, at) for name, at in found]


def alive(r: Redis, role: str) -> int:
    """How many processes of a role have beaten recently."""
    return int(r.zcount(keys.heartbeats(role), clock.now() - HEARTBEAT_TTL, "+inf"))


def start_thread(r: Redis, role: str) -> threading.Event:
    """Beat every few seconds in a daemon thread; set the returned event to stop."""
    stop_beating = threading.Event()
    name = process_name()

    def loop() -> None:
        while not stop_beating.is_set():
            # Redis is away: readiness says so, and the thread beats again once it is back.
            with contextlib.suppress(OSError, RedisError):
                beat(r, role, name)
            stop_beating.wait(HEARTBEAT_TTL / 3)
        with contextlib.suppress(OSError, RedisError):
            stop(r, role, name)

    threading.Thread(target=loop, name=f"{role}-heartbeat", daemon=True).start()
    return stop_beating
