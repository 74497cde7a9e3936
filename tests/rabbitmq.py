"""Virtual hosts of the local RabbitMQ, one per test, so that two suites on one RabbitMQ never
share a queue."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.prerequisites import RABBITMQ, require_rabbitmq


@dataclass(frozen=True)
class VirtualHost:
    name: str
    ctl: str

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}/{self.name}"

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [self.ctl, "-q", *args], check=True, capture_output=True, text=True, timeout=60
        )
        return done.stdout

    def consumers(self, queue: str) -> int:
        """How many consumers `queue` has (0 when there is no such queue)."""
        for line in self.run("list_queues", "-p", self.name, "name", "consumers").splitlines():
            name, _, count = line.partition("\t")
            if name == queue:
                return int(count)
        return 0


@pytest.fixture
def vhost() -> Iterator[VirtualHost]:
    """A new virtual host of the local RabbitMQ, removed after the test."""
    made = VirtualHost(f"switchboard-test-{secrets.token_hex(4)}", require_rabbitmq())
    made.run("add_vhost", made.name)
    try:
        made.run("set_permissions", "-p", made.name, "guest", ".*", ".*", ".*")
        yield made
    finally:
        made.run("delete_vhost", made.name)
