"""Finding deliveries: newest first, by status, endpoint, conversation or dead-letter time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from broker.core import keys
from broker.core.connection import Redis
from broker.delivery import records

#: A filtered listing reads at most this many index entries before it stops counting.
SCAN_LIMIT = 20_000
_CHUNK = 500


def _newest_first(
    r: Redis, key: str, low: float | str = "-inf", high: float | str = "+inf"
) -> Iterator[str]:
    """The index's members, newest first, each once. Read in chunks by rank while work goes
    on: a member added meanwhile moves the others down a rank, so the next chunk may
    begin with one already given."""
    offset = 0
    given: set[str] = set()
    while offset < SCAN_LIMIT:
        chunk = r.zrevrangebyscore(key, high, low, start=offset, num=_CHUNK)
        for member in chunk:
            if member not in given:
                given.add(member)
                yield member
        if len(chunk) < _CHUNK:
            return
        offset += len(chunk)


def list_page(
    r: Redis,
    *,
    offset: int,
    limit: int,
    status: str | None = None,
    endpoint_id: str | None = None,
    conversation_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    index = (
        keys.DEAD
        if status == "dead"
        else (keys.endpoint_deliveries(endpoint_id) if endpoint_id else keys.DELIVERIES)
    )
    if not status and not conversation_id and (endpoint_id is None or index != keys.DEAD):
        total = int(r.zcard(index))
        return records.views(r, r.zrevrange(index, offset, offset + limit - 1)), total
    matched: list[dict[str, Any]] = []
    total = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal total
        for item in records.views(r, batch):
            if _matches(item, status, endpoint_id, conversation_id):
                if offset <= total < offset + limit:
                    matched.append(item)
                total += 1
        batch.clear()

    for delivery_id in _newest_first(r, index):
        batch.append(delivery_id)
        if len(batch) >= 100:
            flush()
    flush()
    return matched, total


def _matches(
    item: dict[str, Any], status: str | None, endpoint_id: str | None, conversation_id: str | None
) -> bool:
    return (
        (status is None or item["status"] == status)
        and (endpoint_id is None or item["endpointId"] == endpoint_id)
        and (conversation_id is None or item["sessionId"] == conversation_id)
    )


def dead_letter_page(
    r: Redis,
    *,
    offset: int,
    limit: int,
    endpoint_id: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of dead letters, newest first, reading only that page of the index; for one
    endpoint, the index is read in chunks (at most SCAN_LIMIT entries) and filtered."""
    low: float | str = since_ms if since_ms is not None else "-inf"
    high: float | str = until_ms if until_ms is not None else "+inf"
    if endpoint_id is None:
        pipe = r.pipeline(transaction=False)
        pipe.zrevrangebyscore(keys.DEAD, high, low, start=offset, num=limit)
        pipe.zcount(keys.DEAD, low, high)
        chosen, total = pipe.execute()
        return [i for i in records.views(r, chosen) if i["status"] == "dead"], int(total)
    matched: list[dict[str, Any]] = []
    total = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal total
        for item in records.views(r, batch):
            if item["status"] == "dead" and item["endpointId"] == endpoint_id:
                if offset <= total < offset + limit:
                    matched.append(item)
                total += 1
        batch.clear()

    for delivery_id in _newest_first(r, keys.DEAD, low, high):
        batch.append(delivery_id)
        if len(batch) >= _CHUNK:
            flush()
    flush()
    return matched, total


def dead_letter_ids(
    r: Redis,
    *,
    endpoint_id: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> list[str]:
    """Dead-lettered delivery ids, oldest first, in a time range and for one endpoint if asked.

    Only deliveries that are dead now: the index may briefly hold one that is being
    replayed, or one whose record has expired.
    """
    low: float | str = since_ms if since_ms is not None else "-inf"
    high: float | str = until_ms if until_ms is not None else "+inf"
    found: list[str] = r.zrangebyscore(keys.DEAD, low, high)
    chosen: list[str] = []
    for start in range(0, len(found), _CHUNK):
        chosen += [
            item["id"]
            for item in records.views(r, found[start : start + _CHUNK])
            if item["status"] == "dead"
            and (endpoint_id is None or item["endpointId"] == endpoint_id)
        ]
    return chosen
