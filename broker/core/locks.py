"""A lease lock in Redis: held by one worker, renewed while it works, expiring if it dies."""

from __future__ import annotations

import secrets

from broker.core import scripts
from broker.core.connection import Redis


class Lock:
    def __init__(self, r: Redis, key: str, lease: float) -> None:
        self._r = r
        self.key = key
        self.lease = lease
        self.token = secrets.token_hex(8)

    def acquire(self) -> bool:
        return bool(self._r.set(self.key, self.token, nx=True, px=int(self.lease * 1000)))

    def release(self) -> None:
        scripts.run(self._r, "lock_release", [self.key], [self.token])
