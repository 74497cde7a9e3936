"""Helpers of the delivery tests: reading deliveries back, and stacks with settings of their own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import redis

from broker.core import clock
from switchboard.embedded_redis import free_port
from switchboard.stack import Stack
from tests.integration.conftest import ADMIN_TOKEN, Api, stack_env
from tests.receivers import Hit
from tests.redis_databases import db, url


def texts(hits: list[Hit]) -> list[str]:
    return [hit.body["message"]["text"] for hit in hits]


def of_conversation(hits: list[Hit], conversation: str) -> list[Hit]:
    return [hit for hit in hits if hit.body["sessionId"] == conversation]


def deliveries(api: Api, **query: str) -> list[dict[str, Any]]:
    answer = api.get("/v1/deliveries", params={"limit": "500", **query})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def delivery(api: Api, delivery_id: str) -> dict[str, Any]:
    answer = api.get(f"/v1/deliveries/{delivery_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def attempt_times(item: dict[str, Any]) -> list[float]:
    return [clock.parse_iso(a["at"]) for a in item["attempts"]]


def endpoint(api: Api, endpoint_id: str) -> dict[str, Any]:
    answer = api.get(f"/v1/endpoints/{endpoint_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


class OwnStack:
    """Processes of Switchboard on databases of their own, each role with the settings given."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.base_env = {
            **stack_env("own", "own_broker"),
            "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
        }
        self._log = log.open("ab")
        self.stacks: list[Stack] = []
        self.data = redis.Redis.from_url(url(db("own")), decode_responses=True)
        self.data.flushdb()
        redis.Redis.from_url(url(db("own_broker"))).flushdb()
        self.api = Api(f"http://127.0.0.1:{self.port}", {"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def env(self, **changes: str) -> dict[str, str]:
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
def own_stack(log: Path) -> Iterator[OwnStack]:
    made = OwnStack(log)
    try:
        yield made
    finally:
        made.stop()
