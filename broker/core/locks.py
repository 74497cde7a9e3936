"""A lease lock in Redis: held by one worker, renewed while it works, expiring if it dies."""

from __future__ import annotations

import secrets

from broker.core import scripts
from broker.core.connection import Pipeline, Redis


class Lock:
    def __init__(self, r: Redis, key: str, lease: float) -> None:
        self._r = r
        self.key = key
        self.lease = lease
        self.token = secrets.token_hex(8)

    def acquire(self) -> bool:
        return bool(self._r.set(self.key, self.token, nx=True, px=int(self.lease * 1000)))

    def extend(self, lease: float | None = None) -> bool:
        self.lease = lease or self.lease
        return bool(
            scripts.run(self._r, "lock_extend", [self.key], [self.token, int(self.lease * 1000)])
        )

    def extend_on(self, pipe: Pipeline, lease: float) -> None:
        """Queue the extension on a pipeline; its answer is 1 while the lock is still ours."""
        self.lease = lease
        scripts.add(pipe, "lock_extend", [self.key], [self.token, int(self.lease * 1000)])

    def release(self) -> None:
        scripts.run(self._r, "lock_release", [self.key], [self.token])
