"""Redis connections from one URL: `redis://`, `rediss://` or `unix://` for one Redis,
`redis+sentinel://` (or `sentinel://`) for the master that Sentinel names, and
`redis+cluster://` (or `rediss+cluster://`) for a Redis Cluster."""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Mapping
from typing import Any, TypeAlias, cast
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
from redis._parsers.commands import CommandPolicies, RequestPolicy, ResponsePolicy
from redis.backoff import ExponentialBackoff
from redis.commands.policies import BasePolicyResolver, PolicyResolver, StaticPolicyResolver
from redis.driver_info import DriverInfo
from redis.retry import Retry
from redis.sentinel import Sentinel

from broker.core import keys
from broker.core.defaults import (
    CLUSTER_INDEX_SHARDS,
    CLUSTER_RETRIES,
    REDIS_CONNECT_TIMEOUT,
    REDIS_CONNECTION_WAIT,
    REDIS_CONNECTIONS,
    REDIS_HEALTH_CHECK_INTERVAL,
    REDIS_KEEPALIVE,
    REDIS_SOCKET_TIMEOUT,
    SENTINEL_MASTER,
)
from broker.core.errors import ConfigError
from broker.core.lean_redis import LeanRedis
from broker.core.redis_types import AsyncRedis as AsyncRedis  # the types, for every module
from broker.core.redis_types import ClusterBase as _ClusterBase
from broker.core.redis_types import Pipeline as Pipeline
from broker.core.redis_types import Redis as Redis

#: What a hash write (HSET with a mapping) takes.
HashFields: TypeAlias = Mapping[str | bytes, bytes | float | int | str]


#: What a Redis command can raise when Redis is in trouble: redis-py's errors, those of its
#: cluster client (which are not RedisErrors: "Redis Cluster cannot be connected" when no
#: node answers), and the socket's.
REDIS_TROUBLE: tuple[type[Exception], ...] = (
    redis.RedisError,
    redis.exceptions.RedisClusterException,
    OSError,
)

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
#: This process short of what a connection takes (a file descriptor, socket buffers,
#: memory): Redis may be well, but cannot be reached from here for now. redis-py raises it
#: as a ConnectionError when the socket cannot be made, and bare when anything else made
#: with the connection fails.
_SHORT_HERE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
SHORT_HERE = "unreachable from here, out of file descriptors or memory"


#: What uvloop raises when a command is written on a connection whose transport closed
#: under it (the peer reset it); redis-py lets it through as it is.
_CLOSED_TRANSPORT = re.compile(r"^unable to perform operation on <\w*Transport closed=True")


def unavailable_reason(exc: BaseException) -> str | None:
    """Why Redis cannot serve us now ("unreachable", "read-only", "out of memory", ...), or
    None when `exc` is no such trouble. The reason never quotes Redis or its URL."""
    if _short_here(exc):
        return SHORT_HERE
    for kind, reason in _UNAVAILABLE:
        if isinstance(exc, kind):
            return reason
    if isinstance(exc, RuntimeError) and _CLOSED_TRANSPORT.match(str(exc)):
        return "unreachable"
    if isinstance(exc, redis.exceptions.RedisClusterException) and "connect" in str(exc):
        return "unreachable"
    if isinstance(exc, redis.ResponseError):
        found = _UNAVAILABLE_REPLY.search(str(exc))
        if found:
            return _UNAVAILABLE_WORDS[found.group(1)]
    return None


def _short_here(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, is this process's own shortage."""
    seen: BaseException | None = exc
    for _ in range(5):  # a chain is short; a cycle ends here too
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in _SHORT_HERE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


SENTINEL_SCHEMES = ("redis+sentinel://", "sentinel://")
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def is_cluster(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def is_sentinel(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEMES)


def check_url(url: str, variable: str = "REDIS_URL") -> None:
    """ConfigError, naming `variable`, when `url` is not a Redis URL of a kind `connect`
    takes; nothing is connected."""
    if is_sentinel(url) or is_cluster(url):
        _hosts(url, 6379, variable)
        _database(url, variable)
        if is_cluster(url):
            _cluster_options(url)
        return
    try:
        # redis-py takes `redis://` for localhost and drops a database that is not a number.
        parsed = redis.connection.parse_url(url)
    except ValueError as exc:
        raise ConfigError(f"{variable} is not a Redis URL: {exc}") from exc
    if url.startswith("unix://"):
        if not parsed.get("path"):
            raise ConfigError(f"{variable} names no socket: unix:///path/to/redis.sock")
        return
    if not parsed.get("host"):
        raise ConfigError(f"{variable} names no host: redis://host:6379/0")
    _database(url, variable)


def connect(
    url: str, *, sentinel_master: str = SENTINEL_MASTER, timeout: float | None = None
) -> Redis:
    """A client answering strings, of whatever Redis `url` names; `timeout`: how long it
    waits for Redis to connect or answer a command (seconds; None: `socket_options`')."""
    if is_sentinel(url):
        parts = urlsplit(url)
        sentinel = Sentinel(
            sentinel_hosts(url), password=parts.password, **socket_options(url, timeout)
        )
        return sentinel.master_for(
            sentinel_master,
            db=_database(url),
            decode_responses=True,
            password=parts.password,
            max_connections=REDIS_CONNECTIONS,
        )
    if is_cluster(url):
        # Typed as a single Redis: the commands we send are the same, routed by key.
        return cast(
            "Redis",
            _Cluster(
                startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in _hosts(url, 6379)],
                policy_resolver=_ScriptsAreKeyed(),
                **_cluster_options(url, timeout),
            ),
        )
    check_url(url)
    try:
        # A blocking pool: a thread past the limit waits for a free connection instead of
        # failing (redis-py's default pool raises past 100, fewer than a worker's threads).
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_CONNECTION_WAIT,
            decode_responses=True,
            # Read once: else each new connection reads redis-py's version from its package
            # files, which fails once the process is out of file descriptors, and a pool
            # that fails to make a connection never makes that one again.
            driver_info=DriverInfo(),
            **socket_options(url, timeout),
        )
        return cast("Redis", LeanRedis(connection_pool=pool))  # the pool decodes
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a Redis URL: {exc}") from exc


def connect_async(url: str, *, sentinel_master: str = SENTINEL_MASTER) -> AsyncRedis:
    """The asyncio client of `connect`, for an event loop (the workers' delivery loop)."""
    if is_sentinel(url):
        parts = urlsplit(url)
        sentinel = redis.asyncio.sentinel.Sentinel(
            sentinel_hosts(url), password=parts.password, **socket_options(url)
        )
        return cast(
            "AsyncRedis",
            sentinel.master_for(
                sentinel_master,
                db=_database(url),
                decode_responses=True,
                password=parts.password,
            ),
        )
    if is_cluster(url):
        return cast(
            "AsyncRedis",
            redis.asyncio.cluster.RedisCluster(
                startup_nodes=[
                    redis.asyncio.cluster.ClusterNode(h, p) for h, p in _hosts(url, 6379)
                ],
                **_cluster_options(url),
            ),
        )
    check_url(url)
    try:
        return redis.asyncio.Redis.from_url(url, decode_responses=True, **socket_options(url))
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a Redis URL: {exc}") from exc


def socket_options(url: str, timeout: float | None = None) -> dict[str, Any]:
    """The timeouts, health checks and TCP keepalive of every connection to the Redis `url`
    names, as redis-py and kombu's Redis transport take them (a Unix socket has no
    keepalive). Said, not left to redis-py's defaults, which wait for ever. `timeout`, where
    given, bounds both connecting and each command."""
    options: dict[str, Any] = {
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT if timeout is None else timeout,
        "socket_timeout": REDIS_SOCKET_TIMEOUT if timeout is None else timeout,
        "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL,
    }
    if not url.startswith(("unix://", "redis+socket://")):
        options["socket_keepalive"] = True
        options["socket_keepalive_options"] = {
            getattr(socket, name): value
            for name, value in REDIS_KEEPALIVE.items()
            if hasattr(socket, name)  # those the platform has
        }
    return options


def sentinel_hosts(url: str) -> list[tuple[str, int]]:
    """The Sentinels of a Sentinel URL."""
    return _hosts(url, 26379)


class _ScriptsAreKeyed(BasePolicyResolver):
    """Scripts go to the node of their keys. Without a policy for a command, redis-py's
    cluster pipeline asks Redis for its keys first (COMMAND GETKEYS: a round trip for each
    script in a pipeline, two or three a message), though it routes EVALSHA by its keys
    without asking."""

    _KEYED = CommandPolicies(
        request_policy=RequestPolicy.DEFAULT_KEYED, response_policy=ResponsePolicy.DEFAULT_KEYED
    )

    def __init__(self, fallback: PolicyResolver | None = None) -> None:
        scripts = {"eval": self._KEYED, "evalsha": self._KEYED}
        super().__init__({"core": scripts}, fallback or StaticPolicyResolver())

    def with_fallback(self, fallback: PolicyResolver) -> PolicyResolver:
        return _ScriptsAreKeyed(fallback)


class _Cluster(_ClusterBase):
    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        """A pipeline that knows the client's policies (redis-py's does not pass them on;
        neither attribute is in the stubs)."""
        pipe = super().pipeline(transaction, shard_hint)
        pipe._policy_resolver = self._policy_resolver  # type: ignore[attr-defined]
        return pipe


def _hosts(url: str, default_port: int, variable: str = "REDIS_URL") -> list[tuple[str, int]]:
    """The hosts of a `scheme://[user:password@]h1:port,h2:port/0` URL."""
    hosts = []
    for item in urlsplit(url).netloc.split("@")[-1].split(","):
        host, _, port = item.partition(":")
        if not host or not (port or str(default_port)).isdigit() or not 0 < int(port or 1) < 65536:
            raise ConfigError(f"{variable} names no host and port in {item!r}")
        hosts.append((host, int(port or default_port)))
    return hosts


def _database(url: str, variable: str = "REDIS_URL") -> int:
    number = urlsplit(url).path.strip("/") or "0"
    if not number.isdigit():
        raise ConfigError(f"{variable} names no database number in {number!r}")
    return int(number)


def _cluster_options(url: str, timeout: float | None = None) -> dict[str, Any]:
    """What the cluster clients share; a cluster has one database, 0."""
    if _database(url) != 0:
        raise ConfigError("REDIS_URL: a Redis Cluster has only database 0")
    parts = urlsplit(url)
    return {
        "decode_responses": True,
        "username": parts.username or None,
        "password": parts.password,
        "ssl": url.startswith("rediss+"),
        # Per node, as many as to one Redis (redis-py's default, 100, is fewer than a
        # worker's threads).
        "max_connections": REDIS_CONNECTIONS,
        # A master that fails is replaced by its replica within the cluster's node timeout:
        # commands wait for that (retries with backoff, a few seconds in all) rather than
        # fail at once.
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), CLUSTER_RETRIES),
        **socket_options(url, timeout),
    }


def on_cluster(r: object) -> bool:
    """Whether client or pipeline `r` (asyncio or not) speaks to a Redis Cluster."""
    return isinstance(r, redis.cluster.AbstractRedisCluster)


def index_shards(r: object) -> int:
    """Shards of the scheduler's indexes (`keys.due`, `keys.turns`) on client or pipeline
    `r`: one on a single Redis, CLUSTER_INDEX_SHARDS on a Redis Cluster. Every process of a
    deployment agrees, since they share one REDIS_URL."""
    return CLUSTER_INDEX_SHARDS if on_cluster(r) else 1


def availability(r: Redis) -> str:
    """`ok` when Redis takes a write now, else why not (see `unavailable_reason`)."""
    try:
        r.set(keys.READY_PROBE, "1", px=10_000)
    except REDIS_TROUBLE as exc:
        return unavailable_reason(exc) or "failing"
    return "ok"
