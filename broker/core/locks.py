"""A lease lock in Redis: held by one worker, renewed while it works, expiring if it dies."""

from __future__ import annotations

import secrets
import time

from broker.core import scripts
from broker.core.connection import Redis

#: How often a lock that is held is tried again while waiting for it (seconds).
_RETRY_EVERY = 0.01


class Lock:
    def __init__(self, r: Redis, key: str, lease: float) -> None:
        self._r = r
        self.key = key
        self.lease = lease
        self.token = secrets.token_hex(8)

    def acquire(self) -> bool:
        return bool(self._r.set(self.key, self.token, nx=True, px=int(self.lease * 1000)))

    def acquire_within(self, wait: float, retry_every: float = _RETRY_EVERY) -> bool:
        """Acquire the lock, trying again every `retry_every` seconds while another holds it;
        False when it is still held `wait` seconds on."""
        deadline = time.monotonic() + wait
        while not self.acquire():
            if time.monotonic() > deadline:
                return False
            time.sleep(retry_every)
        return True

    def release(self) -> None:
        scripts.run(self._r, "lock_release", [self.key], [self.token])
