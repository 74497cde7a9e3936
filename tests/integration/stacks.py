"""Running Switchboard for the integration tests: the stacks' settings, a client of a running
web process, and stacks on databases of their own with settings of their own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from broker.core.connection import Redis, connect
from switchboard.embedded_redis import free_port
from switchboard.stack import Stack
from tests.redis_databases import db, url
from tests.settings import LOOPBACK_ALLOWLIST

ADMIN_TOKEN = "integration-admin-token-long-enough"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

#: Settings of the stacks under test: loopback allowed, short claims and quick scheduling.
STACK_SETTINGS = {
    "SWITCHBOARD_ADMIN_TOKEN": ADMIN_TOKEN,
    "SWITCHBOARD_OUTBOUND_ALLOWLIST": LOOPBACK_ALLOWLIST,
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

    def bot(self, definition: dict[str, Any] | None = None, name: str = "test") -> dict[str, Any]:
        """A new bot (an echo bot unless `definition` is given)."""
        answer = self.post(
            "/v1/bots", json={"name": name, "definition": definition or {"template": "echo"}}
        )
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def echo_channel(self, webhook_url: str, **channel: Any) -> dict[str, Any]:
        """An echo bot with one Webhook channel; the answer holds the channel's secrets."""
        bot = self.bot()
        created = self.post(
            f"/v1/bots/{bot['id']}/channels/webhook", json={"webhookUrl": webhook_url}
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
        """A user's message on the channel: `text`, or the intro without one."""
        message = {"textMessage": {"text": text}} if text is not None else {"introMessage": {}}
        return requests.post(
            channel["messagesUrl"],
            json={"conversationId": conversation, "message": message, **extra},
            headers={"Authorization": f"Bearer {channel['accessToken']}"},
            timeout=10,
        )


class OwnStack:
    """Processes of Switchboard on databases of their own (or on the Redis and broker that
    `changes` name), each role with the settings given."""

    def __init__(self, log: Path, **changes: str) -> None:
        self.port = free_port()
        self.base_env = {
            **stack_env("own", "own_broker"),
            "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            **changes,
        }
        #: Where every process of the stack writes its log.
        self.log_path = log
        self._log = log.open("ab")
        self.stacks: list[Stack] = []
        self.data: Redis = connect(self.base_env["REDIS_URL"])
        self.data.flushdb()
        redis.Redis.from_url(url(db("own_broker"))).flushdb()
        self.api = Api(f"http://127.0.0.1:{self.port}", ADMIN)

    def env(self, **changes: str) -> dict[str, str]:
        """The stack's environment with `changes`; an empty value removes the variable."""
        env = {**self.base_env, **changes}
        return {name: value for name, value in env.items() if value != ""}

    def start(self, role: str, env: Mapping[str, str] | None = None, *, port: int = 0) -> Stack:
        stack = Stack(env or self.env(), port=port or self.port, log=self._log)
        stack.start((role,))
        self.stacks.append(stack)
        return stack

    def wait_ready(self) -> None:
        Stack(self.base_env, port=self.port).wait_ready()

    def stop(self) -> None:
        for stack in self.stacks:
            stack.stop()
        self._log.close()
        self.data.flushdb()
        self.data.close()


@contextlib.contextmanager
def own_stack(log: Path, **changes: str) -> Iterator[OwnStack]:
    made = OwnStack(log, **changes)
    try:
        yield made
    finally:
        made.stop()
