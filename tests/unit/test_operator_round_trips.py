"""`switchboard status` and `endpoints list` read the endpoints a chunk a round trip: their
round trips do not grow with the endpoints (thousands, with a channel each)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from broker.core import keys
from broker.core.connection import Redis
from broker.delivery import endpoint_store
from broker.delivery.endpoint import Endpoint
from switchboard import operator_cli
from tests.fakes import RoundTrips


def failing_endpoints(r: Redis, how_many: int) -> None:
    for n in range(how_many):
        endpoint_id = f"ch_{n:04d}"
        endpoint = Endpoint(id=endpoint_id, kind="channel", bot_id="b", url="http://x/", secret="s")
        endpoint_store.save(r, endpoint)
        r.hset(keys.endpoint_health(endpoint_id), mapping={"state": "failing", "lastError": "500"})
        r.rpush(keys.endpoint_recent(endpoint_id), "0", "1")


def round_trips_of(
    r: Redis, monkeypatch: pytest.MonkeyPatch, command: Callable[[Redis], object]
) -> int:
    with monkeypatch.context() as patched:
        counted = RoundTrips(r, patched)
        command(r)
        return counted.count


@pytest.mark.parametrize(
    "command",
    [
        lambda r: operator_cli.status(r, as_json=True),
        lambda r: operator_cli.list_endpoints(r, None, as_json=True),
    ],
    ids=["status", "endpoints list"],
)
def test_the_round_trips_do_not_grow_with_the_endpoints(
    fake_redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: Callable[[Redis], object],
) -> None:
    failing_endpoints(fake_redis, 3)
    command(fake_redis)  # Redis learns the scripts (EVALSHA, then EVAL the first time)
    capsys.readouterr()
    few = round_trips_of(fake_redis, monkeypatch, command)
    failing_endpoints(fake_redis, 300)  # the 3 and 297 more, still one chunk
    assert round_trips_of(fake_redis, monkeypatch, command) == few
    shown = capsys.readouterr().out
    assert shown.count('"state": "failing"') == 3 + 300
    assert '"successRate": 0.5' in shown and '"lastError": "500"' in shown
