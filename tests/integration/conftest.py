"""The real pieces: web, worker and scheduler processes on the real Redis, and local receivers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from broker.core.connection import Redis, connect
from switchboard.embedded_redis import free_port
from switchboard.stack import Stack
from tests.integration.stacks import ADMIN, Api, stack_env
from tests.prerequisites import require_redis
from tests.rabbitmq import vhost  # noqa: F401 (a fixture of the tests here)
from tests.redis_databases import db, url


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Web, a worker and the scheduler, each a real process, for the whole conversation."""
    require_redis()
    redis.Redis.from_url(url(db("stack"))).flushdb()
    redis.Redis.from_url(url(db("stack_broker"))).flushdb()
    port = free_port()
    log_path: Path = tmp_path_factory.mktemp("stack") / "stack.log"
    with log_path.open("ab") as log:
        running = Stack(
            {**stack_env(), "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{port}"},
            port=port,
            log=log,
        )
        running.start()
        try:
            running.wait_ready()
            yield running
        finally:
            running.stop()
    print(f"stack log: {log_path}")


@pytest.fixture
def data(stack: Stack) -> Iterator[Redis]:
    """The stack's data database, flushed before each test."""
    client: Redis = redis.Redis.from_url(url(db("stack")), decode_responses=True)
    for key in client.scan_iter(match="sb:*", count=1000):
        if not key.startswith("sb:heartbeats:"):
            client.delete(key)
    yield client
    client.close()


@pytest.fixture
def api(stack: Stack, data: Redis) -> Api:
    return Api(stack.url, ADMIN)


@pytest.fixture
def r() -> Iterator[Redis]:
    """The real Redis's app database, as the core's own client, flushed around each test."""
    require_redis()
    client = connect(url(db("app")))
    client.flushdb()
    yield client
    client.flushdb()
