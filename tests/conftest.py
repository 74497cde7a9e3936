"""Fixtures shared by every test: Redis (real or fake), polling, and settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from broker.core import scripts
from broker.core.connection import Redis
from broker.core.settings import Settings, parse_allowlist
from tests.redis_databases import HOST as REDIS_HOST
from tests.redis_databases import PORT as REDIS_PORT

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


@pytest.fixture(autouse=True)
def scripts_keep_to_one_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every script a test runs in this process is checked: its keys share one hash slot,
    as Redis Cluster requires."""
    for name in ("run", "add"):
        real = getattr(scripts, name)

        def checked(
            target: Any, script: str, keys: list[str], args: list[Any], real: Any = real
        ) -> Any:
            assert len(scripts.slots(keys)) <= 1, f"{script}: keys in several slots: {keys}"
            return real(target, script, keys, args)

        monkeypatch.setattr(scripts, name, checked)


@pytest.fixture
def fake_redis() -> Iterator[Redis]:
    """A fakeredis client with Lua, for fast unit tests of the core."""
    client = fakeredis.FakeRedis(decode_responses=True)
    yield client
    client.flushall()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        admin_token="test-admin-token",
        outbound_allowlist=LOOPBACK,
        retry_schedule=(0, 0.2, 0.4),
        claim_lease=5.0,
    )
