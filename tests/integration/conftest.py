"""The real pieces: web, worker and scheduler processes on the real Redis, and local receivers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from switchboard.embedded_redis import free_port
from switchboard.stack import Stack
from tests.conftest import require_redis
from tests.receivers import Receiver
from tests.redis_databases import db, url

ADMIN_TOKEN = "integration-admin-token"

#: Settings of the stacks under test: loopback allowed, short claims and quick scheduling.
STACK_SETTINGS = {
    "SWITCHBOARD_ADMIN_TOKEN": ADMIN_TOKEN,
    "SWITCHBOARD_OUTBOUND_ALLOWLIST": "127.0.0.0/8,::1/128",
    "SWITCHBOARD_SCHEDULER_INTERVAL": "0.05",
    "SWITCHBOARD_CLAIM_LEASE": "2",
    "SWITCHBOARD_RETRY_SCHEDULE": "0,0.3,0.6,1",
    "SWITCHBOARD_LOG_LEVEL": "WARNING",
}


def stack_env(data: str = "stack", broker: str = "stack_broker") -> dict[str, str]:
    """The environment of a stack on this run's databases for `data` and `broker`."""
    return {
        **STACK_SETTINGS,
        "REDIS_URL": url(db(data)),
        "SWITCHBOARD_BROKER_URL": url(db(broker)),
    }


@dataclass
class Api:
    """A client of the running web process."""

    base: str
    admin: dict[str, str]

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(
            self.base + path, headers=kwargs.pop("headers", self.admin), timeout=10, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(
            self.base + path, headers=kwargs.pop("headers", self.admin), timeout=10, **kwargs
        )

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.put(
            self.base + path, headers=kwargs.pop("headers", self.admin), timeout=10, **kwargs
        )

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.patch(
            self.base + path, headers=kwargs.pop("headers", self.admin), timeout=10, **kwargs
        )

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.delete(
            self.base + path, headers=kwargs.pop("headers", self.admin), timeout=10, **kwargs
        )

    def echo_channel(self, webhook_url: str, **channel: Any) -> dict[str, Any]:
        """An echo bot with one Webhook channel; the answer holds the channel's secrets."""
        bot = self.post("/v1/bots", json={"name": "test", "definition": {"template": "echo"}})
        assert bot.status_code == 201, bot.text
        created = self.post(
            f"/v1/bots/{bot.json()['id']}/channels/webhook", json={"webhookUrl": webhook_url}
        )
        assert created.status_code == 201, created.text
        result: dict[str, Any] = created.json()
        if channel:
            patched = self.patch(
                f"/v1/bots/{result['botId']}/channels/webhook/{result['id']}", json=channel
            )
            assert patched.status_code == 200, patched.text
        return result

    def send(
        self, channel: dict[str, Any], conversation: str, text: str | None = None, **extra: Any
    ) -> requests.Response:
        message = {"textMessage": {"text": text}} if text is not None else {"introMessage": {}}
        return requests.post(
            channel["messagesUrl"],
            json={"conversationId": conversation, "message": message, **extra},
            headers={"Authorization": f"Bearer {channel['accessToken']}"},
            timeout=10,
        )


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
def data(stack: Stack) -> Iterator[redis.Redis]:
    """The stack's data database, flushed before each test."""
    client = redis.Redis.from_url(url(db("stack")), decode_responses=True)
    for key in client.scan_iter(match="sb:*", count=1000):
        if not key.startswith("sb:heartbeat:"):
            client.delete(key)
    yield client
    client.close()


@pytest.fixture
def api(stack: Stack, data: redis.Redis) -> Api:
    return Api(stack.url, {"Authorization": f"Bearer {ADMIN_TOKEN}"})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.stop()


@pytest.fixture
def make_receiver() -> Iterator[Any]:
    made: list[Receiver] = []

    def factory(behaviour: Any = None) -> Receiver:
        item = Receiver(behaviour)
        made.append(item)
        return item

    yield factory
    for item in made:
        item.stop()
