"""Redis connections from one URL: `redis://`, `rediss://`, `unix://` or `sentinel://`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeAlias, cast
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
from redis.sentinel import Sentinel

from broker.core.defaults import REDIS_CONNECTION_WAIT, REDIS_CONNECTIONS, SENTINEL_MASTER
from broker.core.errors import ConfigError

#: What a hash write (HSET with a mapping) takes.
HashFields: TypeAlias = Mapping[str | bytes, bytes | float | int | str]

if TYPE_CHECKING:
    import redis.asyncio
    from redis.client import Pipeline as _Pipeline

    #: Our clients always decode answers: typed by the `types-redis` stubs, whose client
    #: and pipeline know it (redis-py's own types say `bytes | str` for every answer).
    Redis: TypeAlias = redis.Redis[str]
    Pipeline: TypeAlias = _Pipeline[str]
    AsyncRedis: TypeAlias = redis.asyncio.Redis[str]
else:
    Redis = redis.Redis
    Pipeline = redis.client.Pipeline
    AsyncRedis = redis.asyncio.Redis


def connect(url: str, *, sentinel_master: str = SENTINEL_MASTER) -> Redis:
    """A client answering strings; `sentinel://h1:26379,h2:26379/0` asks Sentinel for the master."""
    if url.startswith("sentinel://"):
        parts = urlsplit(url)
        sentinel = Sentinel(_sentinels(url), socket_timeout=5, password=parts.password)
        return sentinel.master_for(
            sentinel_master,
            db=int(parts.path.strip("/") or 0),
            decode_responses=True,
            password=parts.password,
            max_connections=REDIS_CONNECTIONS,
        )
    try:
        # A blocking pool: a thread past the limit waits for a free connection instead of
        # failing (redis-py's default pool raises past 100, fewer than a worker's threads).
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_CONNECTION_WAIT,
            decode_responses=True,
            health_check_interval=30,
        )
        return cast("Redis", redis.Redis(connection_pool=pool))  # the pool decodes
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a Redis URL: {exc}") from exc


def connect_async(url: str, *, sentinel_master: str = SENTINEL_MASTER) -> AsyncRedis:
    """The asyncio client of `connect`, for an event loop (the workers' delivery loop)."""
    if url.startswith("sentinel://"):
        parts = urlsplit(url)
        sentinel = redis.asyncio.sentinel.Sentinel(
            _sentinels(url), socket_timeout=5, password=parts.password
        )
        return cast(
            "AsyncRedis",
            sentinel.master_for(
                sentinel_master,
                db=int(parts.path.strip("/") or 0),
                decode_responses=True,
                password=parts.password,
            ),
        )
    try:
        return redis.asyncio.Redis.from_url(url, decode_responses=True, health_check_interval=30)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a Redis URL: {exc}") from exc


def _sentinels(url: str) -> list[tuple[str, int]]:
    """The Sentinels of a `sentinel://h1:26379,h2:26379/0` URL."""
    hosts = []
    for item in urlsplit(url).netloc.split("@")[-1].split(","):
        host, _, port = item.partition(":")
        hosts.append((host, int(port or 26379)))
    return hosts
