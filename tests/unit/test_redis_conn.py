"""Redis connections: a URL that is not Redis's is refused before any connection; the trouble
Redis is in (unreachable, read-only, out of memory) is told from other errors."""

from __future__ import annotations

import pytest
import redis

from broker.core.connection import connect, unavailable_reason
from broker.core.errors import ConfigError


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
        (redis.ResponseError("WRONGTYPE Operation against a key"), None),
        (redis.ResponseError("ERR Error running script: attempt to index a nil value"), None),
        (ValueError("not Redis at all"), None),
    ],
)
def test_the_trouble_redis_is_in_is_named_without_quoting_it(
    error: Exception, reason: str | None
) -> None:
    assert unavailable_reason(error) == reason
