"""The dead-letter listing reads only the page it shows, not the whole
dead-letter index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from broker.core import keys
from broker.core.connection import Redis
from broker.delivery import delivery_index, records


@pytest.fixture
def read(fake_redis: Redis, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """1,000 dead letters, two endpoints taking turns; the ids whose records were read."""
    dead: dict[str | bytes, float] = {f"msg_{n:036d}": 1000 + n for n in range(1000)}
    fake_redis.zadd(keys.DEAD, dead)
    for endpoint in ("ep0", "ep1"):
        mine: dict[str | bytes, float] = {
            i: at for i, at in dead.items() if f"ep{int(str(i)[4:]) % 2}" == endpoint
        }
        fake_redis.zadd(keys.endpoint_dead(endpoint), mine)
    seen: list[str] = []

    def views(r: Redis, ids: Sequence[str]) -> list[dict[str, Any]]:
        seen.extend(ids)
        return [{"id": i, "status": "dead", "endpointId": f"ep{int(i[4:]) % 2}"} for i in ids]

    monkeypatch.setattr(records, "views", views)
    return seen


def test_a_page_of_dead_letters_reads_that_page_only(fake_redis: Redis, read: list[str]) -> None:
    items, total, _ = delivery_index.dead_letter_page(fake_redis, offset=20, limit=10)
    assert total == 1000
    assert [i["id"] for i in items] == [f"msg_{n:036d}" for n in range(979, 969, -1)]
    assert len(read) == 10


def test_a_time_range_is_counted_without_reading_records(
    fake_redis: Redis, read: list[str]
) -> None:
    items, total, _ = delivery_index.dead_letter_page(
        fake_redis, offset=0, limit=5, since_ms=1100, until_ms=1199
    )
    assert total == 100 and items[0]["id"] == f"msg_{199:036d}"
    assert len(read) == 5


def test_one_endpoint_s_page_is_read_from_its_own_index(fake_redis: Redis, read: list[str]) -> None:
    page = delivery_index.dead_letter_page(fake_redis, offset=0, limit=3, endpoint_id="ep1")
    assert page.total == 500
    assert [i["id"] for i in page.items] == [f"msg_{n:036d}" for n in (999, 997, 995)]
    assert len(read) == 3


def test_a_dead_letter_added_while_the_index_is_read_does_not_repeat_another(
    fake_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery that dies between two chunks moves the others down a rank: the one at the
    chunk's edge comes again in the next chunk, and is given once."""
    monkeypatch.setattr(delivery_index, "_CHUNK", 2)
    fake_redis.zadd(keys.DEAD, {"a": 1, "b": 2, "c": 3, "d": 4})
    reading = delivery_index._newest_first(fake_redis, keys.DEAD)
    assert next(reading) == ["d", "c"]
    fake_redis.zadd(keys.DEAD, {"e": 5})
    assert [member for chunk in reading for member in chunk] == ["b", "a"]
