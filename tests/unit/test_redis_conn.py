"""Redis connections: a URL that is not Redis's is refused before any connection; the trouble
Redis is in (unreachable, read-only, out of memory) is told from other errors."""

from __future__ import annotations

import errno
from typing import Any

import pytest
import redis

from broker.core.connection import (
    SHORT_HERE,
    Redis,
    check_url,
    connect,
    connect_async,
    is_cluster,
    is_sentinel,
    sentinel_hosts,
    unavailable_reason,
)
from broker.core.defaults import REDIS_SOCKET_TIMEOUT
from broker.core.errors import ConfigError
from broker.core.settings import Settings
from workers.celery_app import kombu_url


def test_a_url_that_is_not_redis_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        connect("http://127.0.0.1:6379")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (redis.ConnectionError("Error 111 connecting to 10.0.0.5:6379"), "unreachable"),
        (redis.TimeoutError("Timeout reading from socket"), "unreachable"),
        (redis.exceptions.BusyLoadingError("Redis is loading"), "loading its data"),
        (
            redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
            "read-only",
        ),
        (
            redis.exceptions.OutOfMemoryError(  # type: ignore[attr-defined]
                "command not allowed when used memory > 'maxmemory'."
            ),
            "out of memory",
        ),
        (
            redis.ResponseError("MISCONF Redis is configured to save RDB snapshots"),
            "unable to persist",
        ),
        (
            redis.ResponseError("Command # 1 (SET a b) of pipeline caused error: MISCONF no disk"),
            "unable to persist",
        ),
        (
            redis.ResponseError(
                "Error running script (call to f_81f4): @user_script:20: @user_script: 20: "
                "-OOM command not allowed when used memory > 'maxmemory'."
            ),
            "out of memory",
        ),
        (
            redis.ResponseError(
                "Error running script (call to f_1): @user_script:3: -READONLY You can't write "
                "against a read only replica."
            ),
            "read-only",
        ),
        (
            # uvloop's, from redis-py writing on a connection that was reset under it.
            RuntimeError(
                "unable to perform operation on <TCPTransport closed=True reading=False "
                "0x563e380b73c0>; the handler is closed"
            ),
            "unreachable",
        ),
        (RuntimeError("unable to perform operation on <Task>; it is done"), None),
        (redis.ResponseError("WRONGTYPE Operation against a key"), None),
        (redis.ResponseError("ERR Error running script: attempt to index a nil value"), None),
        (ValueError("not Redis at all"), None),
        (OSError(errno.ENOENT, "No such file or directory"), None),
    ],
)
def test_the_trouble_redis_is_in_is_named_without_quoting_it(
    error: Exception, reason: str | None
) -> None:
    assert unavailable_reason(error) == reason


def _raised_from(cause: OSError) -> Exception:
    """A ConnectionError raised from `cause`, as redis-py raises one."""
    try:
        try:
            raise cause
        except OSError as error:
            raise redis.ConnectionError(f"Error {error.errno} connecting to Redis") from error
    except redis.ConnectionError as wrapped:
        return wrapped


@pytest.mark.parametrize("number", [errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM])
def test_a_process_out_of_descriptors_or_memory_cannot_reach_redis_for_now(number: int) -> None:
    """Bare, as redis-py raises it when what it makes with a connection fails (reading its
    own version from its package files), or inside the ConnectionError of a socket it could
    not make: either way Redis is out of reach, not this a bug."""
    assert unavailable_reason(OSError(number, "Too many open files")) == SHORT_HERE
    assert unavailable_reason(_raised_from(OSError(number, "Too many open files"))) == SHORT_HERE


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://127.0.0.1:7000/1",  # a cluster has database 0 only
        "redis+cluster://127.0.0.1:port/0",
        "redis+sentinel://:26379/0",
        "redis+sentinel://127.0.0.1:26379/zero",
    ],
)
def test_a_cluster_or_sentinel_url_that_says_too_little_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        connect_async(url)
    with pytest.raises(ConfigError):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "garbage",
        "http://127.0.0.1:6379",
        "redis://h:port/0",
        "redis://",  # redis-py would take localhost
        "redis://127.0.0.1:6379/abc",  # redis-py would take database 0
        "unix://",
        "redis+cluster://h:99999/0",
    ],
)
def test_a_url_is_checked_without_connecting(url: str) -> None:
    with pytest.raises(ConfigError):
        check_url(url)
    for fine in ("redis://127.0.0.1:1/0", "unix:///tmp/none.sock", "redis+sentinel://h:1,g/0"):
        check_url(fine)  # nothing listens there: nothing was connected


def test_sentinel_urls_name_their_sentinels_with_a_default_port() -> None:
    url = "redis+sentinel://:secret@s1:26380,s2/0"
    assert sentinel_hosts(url) == [("s1", 26380), ("s2", 26379)]
    assert is_sentinel(url) and is_sentinel("sentinel://s1/0") and not is_sentinel("redis://a")
    # Celery's transport takes them in kombu's form: one URL per Sentinel.
    assert kombu_url(url) == "sentinel://:secret@s1:26380/0;sentinel://:secret@s2:26379/0"
    assert kombu_url("amqp://guest:guest@127.0.0.1:5672//") == "amqp://guest:guest@127.0.0.1:5672//"
    assert kombu_url("unix://:pw@/run/redis.sock?db=2") == (
        "redis+socket://:pw@/run/redis.sock?virtual_host=2"
    )


def test_a_cluster_needs_celery_s_transport_elsewhere() -> None:
    cluster = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001/0"
    assert is_cluster(cluster) and is_cluster("rediss+cluster://h:1/0")
    with pytest.raises(ConfigError, match="SWITCHBOARD_BROKER_URL must be set"):
        Settings(redis_url=cluster)
    with pytest.raises(ConfigError, match="cannot be a Redis Cluster"):
        Settings(redis_url="redis://127.0.0.1:6379/0", broker_url=cluster)
    assert Settings(redis_url=cluster, broker_url="amqp://h//").broker_url == "amqp://h//"


def options_of(client: object) -> dict[str, object]:
    return dict(client.connection_pool.connection_kwargs)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0", "redis+sentinel://h:1,g/0"]
)
def test_every_connection_to_redis_times_out_and_keeps_alive(url: str) -> None:
    """A Redis gone without closing the connection fails a command within the socket timeout
    instead of holding its thread for ever; keepalive drops the connection sooner."""
    for client in (connect(url), connect_async(url)):
        options = options_of(client)
        assert options["socket_timeout"] == REDIS_SOCKET_TIMEOUT
        assert options["socket_connect_timeout"]
        assert options["health_check_interval"]
        assert options["socket_keepalive"] is True
        assert options["socket_keepalive_options"]
    if url.startswith("redis+sentinel"):
        pool: Any = connect(url).connection_pool
        sentinel = pool.sentinel_manager.sentinels[0]
        assert options_of(sentinel)["socket_timeout"] == REDIS_SOCKET_TIMEOUT


def test_a_unix_socket_times_out_without_keepalive() -> None:
    client: Redis = connect("unix:///tmp/none.sock")
    options = options_of(client)
    assert options["socket_timeout"] == REDIS_SOCKET_TIMEOUT
    assert "socket_keepalive" not in options
