"""What some tests need from the machine: the local Redis, Debian's Chromium, the local
RabbitMQ.

Without it a test is skipped locally, with the reason; under CI=true it fails instead,
since CI must run every test.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
from typing import NoReturn

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.redis_databases import HOST as REDIS_HOST
from tests.redis_databases import PORT as REDIS_PORT


def require_redis() -> None:
    """Skip when no Redis listens on the test Redis's address (127.0.0.1:6379 unless
    SWITCHBOARD_TEST_REDIS_HOST/PORT say otherwise); under CI=true, fail instead."""
    reason = _redis_unreachable()
    if reason is not None:
        _missing(reason, "CI must run the Redis-backed tests")


def require_redis_server() -> str:
    """The path of a `redis-server` for tests that run one of their own (to stop it, fill it,
    or make a cluster of it): the newest on PATH (a virtual environment's bundled Redis 6.2
    may come first, and only 7 waits for replicas when it is stopped); skip without one, fail
    under CI=true."""
    found = _newest_redis_server()
    if found is None:
        _missing("needs redis-server on PATH (apt-get install redis-server)", "CI has it")
    return found


@functools.cache
def _newest_redis_server() -> str | None:
    versions = {}
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which("redis-server", path=folder)
        if found and found not in versions:
            said = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
            version = re.search(r"v=(\d+)\.(\d+)\.(\d+)", said)
            versions[found] = tuple(int(part) for part in version.groups()) if version else ()
    return max(versions, key=lambda path: versions[path], default=None)


def require_chromium() -> str:
    """The path of Debian's headless Chromium; skip without it, fail under CI=true."""
    found = shutil.which("chromium")
    if found is None:
        _missing("needs Debian's chromium (apt-get install chromium)", ".ci/run installs it")
    return found


#: The local RabbitMQ, as the machine runs it.
RABBITMQ = ("127.0.0.1", 5672)


def require_rabbitmq() -> str:
    """`rabbitmqctl`, to make a virtual host of the test's own on the local RabbitMQ; skip
    without either, fail under CI=true."""
    found = shutil.which("rabbitmqctl")
    if found is None:
        _missing("needs rabbitmqctl (apt-get install rabbitmq-server)", "CI has RabbitMQ")
    try:
        socket.create_connection(RABBITMQ, timeout=1).close()
    except OSError as exc:
        _missing(f"needs RabbitMQ on {RABBITMQ[0]}:{RABBITMQ[1]} ({exc})", "CI has RabbitMQ")
    return found


@functools.cache
def _redis_unreachable() -> str | None:
    """Why the test Redis cannot be used, or None: asked once a run, without retries, so that
    a run without Redis skips its Redis-backed tests at once."""
    probe: redis.Redis[bytes] = redis.Redis(
        host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        probe.ping()
    except redis.RedisError as exc:
        return f"needs Redis on {REDIS_HOST}:{REDIS_PORT} ({exc})"
    finally:
        probe.close()
    return None


def _missing(reason: str, under_ci: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; {under_ci}", pytrace=False)
    pytest.skip(reason)
