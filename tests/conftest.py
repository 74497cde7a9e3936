"""Fixtures shared by every test: Redis (real or fake), polling, and settings."""

from __future__ import annotations

import os
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from broker.core.connection import Redis
from broker.core.settings import Settings, parse_allowlist

REDIS_HOST = os.environ.get("SWITCHBOARD_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("SWITCHBOARD_TEST_REDIS_PORT", "6379"))
#: Databases of the test suite's own on the real Redis.
CORE_DB = 12
INTEGRATION_DB = 13
INTEGRATION_BROKER_DB = 14
LOOPBACK = parse_allowlist("127.0.0.0/8,::1/128")


def require_redis() -> None:
    """Skip when no Redis listens on 127.0.0.1:6379; under CI=true, fail instead."""
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        reason = f"needs Redis on {REDIS_HOST}:{REDIS_PORT} ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the Redis-backed tests", pytrace=False)
        pytest.skip(reason)


def redis_url(db: int) -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"


@pytest.fixture
def fake_redis() -> Iterator[Redis]:
    """A fakeredis client with Lua, for fast unit tests of the core."""
    client = fakeredis.FakeRedis(decode_responses=True)
    yield client
    client.flushall()


@pytest.fixture
def real_redis() -> Iterator[Redis]:
    """The real Redis, in a database of the suite's own, flushed before and after each test."""
    require_redis()
    client = redis.Redis.from_url(redis_url(CORE_DB), decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        redis_url=redis_url(CORE_DB),
        broker_url=redis_url(CORE_DB),
        admin_token="test-admin-token",
        outbound_allowlist=LOOPBACK,
        retry_schedule=(0, 0.2, 0.4),
        claim_lease=5.0,
    )
