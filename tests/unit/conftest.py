"""Unit tests use no Redis server: fakeredis, or nothing at all."""

from __future__ import annotations

from typing import Any

import pytest
import redis


@pytest.fixture(autouse=True)
def no_redis_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection to a real Redis fails as if none listened, even where one does, so that
    the unit tests pass the same with Redis stopped (fakeredis connects without a socket)."""

    def refused(connection: Any) -> Any:
        raise redis.ConnectionError(
            f"unit tests use no Redis server ({connection.host}:{connection.port}); "
            "a test that needs one belongs in tests/api"
        )

    monkeypatch.setattr(redis.connection.Connection, "_connect", refused)
