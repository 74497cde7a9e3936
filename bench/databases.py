"""The Redis databases a benchmark has to itself on the local Redis, and its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis


@dataclass(frozen=True)
class BenchDatabases:
    """Data in database `db`, Celery's queues in the next one; both flushed on `fresh()`."""

    db: int

    @property
    def data_url(self) -> str:
        return f"redis://127.0.0.1:6379/{self.db}"

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:6379/{self.db + 1}"

    def env(self, **settings: str) -> dict[str, str]:
        """The environment of the processes under test: these databases, loopback allowed."""
        return {
            **os.environ,
            "REDIS_URL": self.data_url,
            "SWITCHBOARD_BROKER_URL": self.broker_url,
            "SWITCHBOARD_OUTBOUND_ALLOWLIST": "127.0.0.0/8",
            **settings,
        }

    def fresh(self) -> redis.Redis:
        """Flush both databases; returns a client of the data one."""
        redis.Redis.from_url(self.broker_url).flushdb()
        client = redis.Redis.from_url(self.data_url, decode_responses=True)
        client.flushdb()
        return client
