"""Heartbeats in Redis, so that /readyz can tell whether workers and a scheduler are alive."""

from __future__ import annotations

import contextlib
import os
import socket
import threading

from broker.core import clock, keys
from broker.core.connection import Redis
from broker.core.defaults import HEARTBEAT_TTL


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(r: Redis, role: str, name: str) -> None:
    r.set(keys.heartbeat(role, name), repr(clock.now()), ex=HEARTBEAT_TTL)


def alive(r: Redis, role: str) -> int:
    """How many processes of a role have beaten recently."""
    return sum(1 for _ in r.scan_iter(match=keys.heartbeat_pattern(role), count=100))


def start_thread(r: Redis, role: str) -> threading.Event:
    """Beat every few seconds in a daemon thread; set the returned event to stop."""
    stop = threading.Event()
    name = process_name()

    def loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):  # Redis is away; readiness will say so
                beat(r, role, name)
            stop.wait(HEARTBEAT_TTL / 3)
        r.delete(keys.heartbeat(role, name))

    threading.Thread(target=loop, name=f"{role}-heartbeat", daemon=True).start()
    return stop
