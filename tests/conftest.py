"""Fixtures shared by every layer, and the layer marker of every test.

The tests sit in three layers, one directory each, and each test is marked with its own:

- `unit`: pure functions and the core on fakeredis; no Redis server at all.
- `api`: the Flask app in-process (tests/web_app.py) on the real Redis.
- `integration`: real web, worker and scheduler processes and real local receivers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import fakeredis
import pytest

from broker.core import keys as redis_keys
from broker.core import scripts
from broker.core.connection import Redis
from broker.core.settings import Settings
from tests.receivers import Behaviour, Receiver, ReceiverFactory
from tests.settings import LOOPBACK

TESTS = Path(__file__).parent
LAYERS = ("unit", "api", "integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its layer, the directory it sits in."""
    for item in items:
        if not item.path.is_relative_to(TESTS):
            continue
        layer = item.path.relative_to(TESTS).parts[0]
        if layer not in LAYERS:
            raise pytest.UsageError(
                f"{item.nodeid}: a test belongs in one of tests/{{{','.join(LAYERS)}}}/"
            )
        item.add_marker(layer)


def _single_redis_only(key: str) -> bool:
    return key in (redis_keys.READY, redis_keys.SETTINGS_GENERATION) or key.startswith(
        redis_keys.auth_failures("", "").removesuffix("::")
    )


@pytest.fixture(autouse=True)
def scripts_keep_to_one_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every script a test runs in this process is checked: its keys share one hash slot,
    as Redis Cluster requires. The exceptions are what only a single Redis hands to a
    script: the ready list (`TaskSender.ready_list`) and an ingress guard's keys (the
    settings generation and the failed-authentication counters, `ingress.Guard`)."""
    for name in ("run", "add"):
        real = getattr(scripts, name)

        def checked(
            target: Any, script: str, keys: list[str], args: list[Any], real: Any = real
        ) -> Any:
            slotted = [key for key in keys if not _single_redis_only(key)]
            assert len(scripts.slots(slotted)) <= 1, f"{script}: keys in several slots: {keys}"
            return real(target, script, keys, args)

        monkeypatch.setattr(scripts, name, checked)


@pytest.fixture
def fake_redis() -> Iterator[Redis]:
    """A fakeredis client with Lua, for fast unit tests of the core."""
    client = cast(Redis, fakeredis.FakeRedis(decode_responses=True))
    yield client
    client.flushall()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        admin_token="test-admin-token-of-the-unit-tests",
        outbound_allowlist=LOOPBACK,
        retry_schedule=(0, 0.2, 0.4),
        claim_lease=5.0,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP receiver that answers 200 until told otherwise."""
    made = Receiver()
    yield made
    made.stop()


@pytest.fixture
def make_receiver() -> Iterator[ReceiverFactory]:
    """Makes receivers with the behaviour given; stops them all after the test."""
    made: list[Receiver] = []

    def factory(behaviour: Behaviour | None = None) -> Receiver:
        item = Receiver(behaviour)
        made.append(item)
        return item

    yield factory
    for item in made:
        item.stop()
