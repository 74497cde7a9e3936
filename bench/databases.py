"""The Redis databases a benchmark has to itself on the local Redis, and its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis

from broker.core.connection import Redis
from tests.redis_databases import db, url


@dataclass(frozen=True)
class BenchDatabases:
    """Data in one database, Celery's queues in another; both flushed on `fresh()`.

    Unless told which, the benchmark claims two that no other run on this machine uses.
    """

    data_db: int
    broker_db: int

    @classmethod
    def claimed(cls) -> BenchDatabases:
        return cls(db("stack"), db("stack_broker"))

    @property
    def data_url(self) -> str:
        return url(self.data_db)

    @property
    def broker_url(self) -> str:
        return url(self.broker_db)

    def env(self, **settings: str) -> dict[str, str]:
        """The environment of the processes under test: these databases, loopback allowed."""
        return {
            **os.environ,
            "REDIS_URL": self.data_url,
            "SWITCHBOARD_BROKER_URL": self.broker_url,
            "SWITCHBOARD_OUTBOUND_ALLOWLIST": "127.0.0.0/8",
            **settings,
        }

    def fresh(self) -> Redis:
        """Flush both databases; returns a client of the data one."""
        redis.Redis.from_url(self.broker_url).flushdb()
        client = redis.Redis.from_url(self.data_url, decode_responses=True)
        client.flushdb()
        return client
