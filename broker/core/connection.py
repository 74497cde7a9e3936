"""Redis connections from one URL: `redis://`, `rediss://`, `unix://` or `sentinel://`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeAlias, cast
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
from redis.sentinel import Sentinel

from broker.core import keys
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


#: Redis's answers when it cannot take a command for now, by the error redis-py raises.
_UNAVAILABLE: tuple[tuple[type[Exception], str], ...] = (
    (redis.exceptions.BusyLoadingError, "loading its data"),
    (redis.ConnectionError, "unreachable"),
    (redis.TimeoutError, "unreachable"),
    (redis.exceptions.OutOfMemoryError, "out of memory"),  # type: ignore[attr-defined]
    (redis.exceptions.ReadOnlyError, "read-only"),
    (redis.exceptions.ClusterDownError, "cluster down"),
    (redis.exceptions.TryAgainError, "busy"),
)
#: ... and those redis-py raises as a plain ResponseError (the whole answer, or inside a
#: script's error, as "-OOM command not allowed ..."), by their first word.
_UNAVAILABLE_WORDS = {
    "OOM": "out of memory",
    "READONLY": "read-only",
    "LOADING": "loading its data",
    "MISCONF": "unable to persist",
    "MASTERDOWN": "without a master",
    "NOREPLICAS": "without replicas",
    "CLUSTERDOWN": "cluster down",
    "TRYAGAIN": "busy",
}
_UNAVAILABLE_REPLY = re.compile(r"(?:^|[\s:])-?(" + "|".join(_UNAVAILABLE_WORDS) + r")\b")


def unavailable_reason(exc: BaseException) -> str | None:
    """Why Redis cannot serve us now ("unreachable", "read-only", "out of memory", ...), or
    None when `exc` is no such trouble. The reason never quotes Redis or its URL."""
    for kind, reason in _UNAVAILABLE:
        if isinstance(exc, kind):
            return reason
    if isinstance(exc, redis.ResponseError):
        found = _UNAVAILABLE_REPLY.search(str(exc))
        if found:
            return _UNAVAILABLE_WORDS[found.group(1)]
    return None


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


def availability(r: Redis) -> str:
    """`ok` when Redis takes a write now, else why not (see `unavailable_reason`)."""
    try:
        r.set(keys.READY_PROBE, "1", px=10_000)
    except redis.RedisError as exc:
        return unavailable_reason(exc) or "failing"
    return "ok"
