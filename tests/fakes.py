"""Stand-ins for the parts around the core, for unit tests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from broker.core.connection import Redis
from broker.core.settings import Settings
from broker.delivery.http_client import AttemptResult, HttpClient


class RoundTrips:
    """Counts a client's round trips to Redis: each command, and each pipeline (its one
    `execute`)."""

    def __init__(self, r: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in ("pipeline", "execute_command"):
            real = getattr(r, name)

            def counted(*args: Any, real: Any = real, **kwargs: Any) -> Any:
                self.count += 1
                return real(*args, **kwargs)

            monkeypatch.setattr(r, name, counted)


class RecordingSender:
    """A TaskSender that remembers what it was asked to do."""

    def __init__(self) -> None:
        self.ready_list: str | None = None
        self.turns: list[str] = []
        self.deliveries: list[str] = []

    def bot_turn(self, conversation_key: str) -> None:
        self.turns.append(conversation_key)

    def deliver(self, queues: Sequence[str]) -> None:
        self.deliveries.extend(queues)


@dataclass(frozen=True)
class Sent:
    """One POST a ScriptedClient was asked to make."""

    url: str
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def document(self) -> Any:
        """The body, read as JSON."""
        return json.loads(self.body)


class ScriptedClient(HttpClient):
    """A delivery client with no network: answers each POST with the next result given (200
    once they are used up) and remembers every request."""

    def __init__(self, *results: AttemptResult) -> None:
        super().__init__(Settings().outbound_allowlist, "scripted")
        self.results = list(results)
        self.sent: list[Sent] = []

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        connect_timeout: float = 0,
        total_timeout: float = 0,
    ) -> AttemptResult:
        self.sent.append(Sent(url, body, dict(headers)))
        return self.results.pop(0) if self.results else AttemptResult(200, 1)
