"""Finding deliveries: newest first, by status, endpoint, session or dead-letter time.

Every delivery is on `sb:deliveries` and its endpoint's index, and on its conversation's
(the newest SESSION_DELIVERIES of each); a dead one also on `sb:dead` and its endpoint's dead
index. A delivery stays on the first two for as long as its record is kept: a record that
is given a time to live (delivered or dead) is first put on `sb:deliveries:expiring` at its
end (`expiring_entry`), and `forget_expired` takes it off them once that time has come and
the record is gone.

A listing by one of those indexes reads only its page. A listing by session reads the index
of every conversation of that id (one per channel and version). A listing by status (other
than dead) walks an index newest first, reading one field list per entry and whole records
only for the page, and stops counting after SCAN_LIMIT entries: its answer then says so
(`scanLimited`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, get_args

from redis.exceptions import ResponseError

from broker.bots.bot import Version
from broker.core import clock, ids, keys, scripts
from broker.core.connection import Pipeline, Redis, unavailable_reason
from broker.core.defaults import SESSION_DELIVERIES
from broker.core.errors import ValidationFailed
from broker.delivery import records

#: A filtered listing reads at most this many index entries before it stops counting.
SCAN_LIMIT = 50_000
_CHUNK = 500


class Page(NamedTuple):
    items: list[dict[str, Any]]
    total: int
    #: Not every delivery was looked at: a walk stopped at SCAN_LIMIT entries (`total` counts
    #: what it found before), or a conversation's index is full (SESSION_DELIVERIES).
    scan_limited: bool = False


def _newest_first(
    r: Redis, key: str, low: float | str = "-inf", high: float | str = "+inf"
) -> Iterator[list[str]]:
    """The index's members, newest first, each once, a chunk at a time, at most SCAN_LIMIT.
    Read by rank while work goes on: a member added meanwhile moves the others down a rank,
    so the next chunk may begin with one already given."""
    offset = 0
    given: set[str] = set()
    while offset < SCAN_LIMIT:
        chunk = r.zrevrangebyscore(key, high, low, start=offset, num=_CHUNK)
        fresh = [member for member in chunk if member not in given]
        given.update(fresh)
        if fresh:
            yield fresh
        if len(chunk) < _CHUNK:
            return
        offset += len(chunk)


@dataclass(frozen=True)
class _Glance:
    """What a filter looks at of a delivery."""

    status: str
    endpoint_id: str
    session_id: str


def _glances(r: Redis, delivery_ids: Sequence[str]) -> list[_Glance | None]:
    """Each delivery's status (`waiting` told from `queued` as a view does), endpoint and
    session, in a round trip or two; None for a record that expired."""
    pipe = r.pipeline(transaction=False)
    for delivery_id in delivery_ids:
        conversation_key = ids.conversation_of_delivery(delivery_id)
        pipe.hmget(
            keys.delivery(conversation_key, delivery_id),
            ["kind", "status", "endpointId", "conversationId"],
        )
    found = [
        _Glance(status, endpoint_id, session_id) if kind else None
        for kind, status, endpoint_id, session_id in pipe.execute()
    ]
    queued = [(i, g) for i, g in enumerate(found) if g is not None and g.status == "queued"]
    if queued:
        pipe = r.pipeline(transaction=False)
        for i, glance in queued:
            conversation_key = ids.conversation_of_delivery(delivery_ids[i])
            pipe.lindex(keys.fifo(conversation_key, glance.endpoint_id), 0)
            pipe.hget(keys.endpoint_health(glance.endpoint_id), "state")
        answers = pipe.execute()
        for n, (i, glance) in enumerate(queued):
            head, state = answers[2 * n], answers[2 * n + 1]
            if records.is_waiting(delivery_ids[i], head, state):
                found[i] = _Glance("waiting", glance.endpoint_id, glance.session_id)
    return found


def _dead_index(endpoint_id: str | None) -> str:
    return keys.endpoint_dead(endpoint_id) if endpoint_id else keys.DEAD


def list_page(
    r: Redis,
    *,
    offset: int,
    limit: int,
    status: str | None = None,
    endpoint_id: str | None = None,
    conversation_id: str | None = None,
) -> Page:
    if conversation_id is not None:
        found, trimmed = _of_session(r, conversation_id)
        page = _filtered(r, [found], offset, limit, status=status, endpoint_id=endpoint_id)
        return page._replace(scan_limited=trimmed)
    if status == "dead":
        return dead_letter_page(r, offset=offset, limit=limit, endpoint_id=endpoint_id)
    index = keys.endpoint_deliveries(endpoint_id) if endpoint_id else keys.DELIVERIES
    if not status:
        # The count is the index's: those whose record has just expired go first, unless
        # Redis takes no writes now (out of memory, a replica): a listing still answers.
        try:
            forget_expired(r, max_chunks=1)
        except ResponseError as exc:
            if unavailable_reason(exc) not in ("out of memory", "read-only"):
                raise
        pipe = r.pipeline(transaction=False)
        pipe.zrevrange(index, offset, offset + limit - 1)
        pipe.zcard(index)
        chosen, total = pipe.execute()
        return Page(records.views(r, chosen), int(total))
    return _filtered(r, _newest_first(r, index), offset, limit, status=status, scan=True)


def _filtered(
    r: Redis,
    chunks: Iterable[list[str]],
    offset: int,
    limit: int,
    *,
    status: str | None = None,
    endpoint_id: str | None = None,
    scan: bool = False,
) -> Page:
    """The page of the deliveries in `chunks` (newest first) that have `status` and
    `endpoint_id`, and how many do; with `scan`, whether the walk stopped at SCAN_LIMIT."""
    chosen: list[str] = []
    total = scanned = 0
    for chunk in chunks:
        scanned += len(chunk)
        for start in range(0, len(chunk), _CHUNK):
            part = chunk[start : start + _CHUNK]
            for delivery_id, glance in zip(part, _glances(r, part), strict=True):
                if (
                    glance is not None
                    and (status is None or glance.status == status)
                    and (endpoint_id is None or glance.endpoint_id == endpoint_id)
                ):
                    if offset <= total < offset + limit:
                        chosen.append(delivery_id)
                    total += 1
    return Page(records.views(r, chosen), total, scan and scanned >= SCAN_LIMIT)


def _of_session(r: Redis, conversation_id: str) -> tuple[list[str], bool]:
    """The deliveries of every conversation named `conversation_id`, on any channel of any
    bot, in either version, newest first (from each conversation's index), and whether an
    index is full (older deliveries of its conversation may not be on it)."""
    bots: list[str] = r.zrange(keys.BOTS, 0, -1)
    pipe = r.pipeline(transaction=False)
    for bot_id in bots:
        pipe.smembers(keys.bot_channels(bot_id))
    conversations = [
        ids.conversation_key(bot_id, version, channel_id, conversation_id)
        for bot_id, channels in zip(bots, pipe.execute(), strict=True)
        for channel_id in sorted(channels)
        for version in get_args(Version)
    ]
    pipe = r.pipeline(transaction=False)
    for key in conversations:
        pipe.zrange(keys.conversation_deliveries(key), 0, -1, withscores=True)
    indexes = pipe.execute()
    found = [entry for entries in indexes for entry in entries]
    found.sort(key=lambda entry: (entry[1], entry[0]), reverse=True)
    full = any(len(entries) >= SESSION_DELIVERIES for entries in indexes)
    return [delivery_id for delivery_id, _ in found], full


def dead_letter_page(
    r: Redis,
    *,
    offset: int,
    limit: int,
    endpoint_id: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> Page:
    """A page of dead letters, newest first, reading only that page of the index."""
    low: float | str = since_ms if since_ms is not None else "-inf"
    high: float | str = until_ms if until_ms is not None else "+inf"
    index = _dead_index(endpoint_id)
    pipe = r.pipeline(transaction=False)
    pipe.zrevrangebyscore(index, high, low, start=offset, num=limit, withscores=True)
    pipe.zcount(index, low, high)
    chosen, total = pipe.execute()
    items = records.views(r, [delivery_id for delivery_id, _ in chosen])
    found = {item["id"]: item for item in items}
    stale = [
        (delivery_id, at, found[delivery_id]["endpointId"] if delivery_id in found else None)
        for delivery_id, at in chosen
        if delivery_id not in found or found[delivery_id]["status"] == "delivered"
    ]
    _forget_stale(r, index, stale)
    return Page([i for i in items if i["status"] == "dead"], int(total) - len(stale))


def time_range(
    since: str | None, until: str | None, *, option: str = ""
) -> tuple[int | None, int | None]:
    """The dead letters' time range, `since` and `until` (ISO 8601 times, each optional) in
    ms; ValidationFailed naming the one that is not a time, or `since` when it comes after
    `until`. `option` goes before the names in the messages ("--" on the command line)."""
    bounds: list[int | None] = []
    for name, value in (("since", since), ("until", until)):
        try:
            bounds.append(clock.ms_of_iso(value) if value else None)
        except ValueError:
            raise ValidationFailed(
                f"{option}{name} must be an ISO 8601 time, like 2026-11-21T08:00:00Z", field=name
            ) from None
    since_ms, until_ms = bounds
    if since_ms is not None and until_ms is not None and since_ms > until_ms:
        raise ValidationFailed(f"{option}since must not come after {option}until", field="since")
    return since_ms, until_ms


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
    index = _dead_index(endpoint_id)
    found: list[tuple[str, float]] = r.zrangebyscore(index, low, high, withscores=True)
    chosen: list[str] = []
    stale: list[tuple[str, float, str | None]] = []
    for start in range(0, len(found), _CHUNK):
        part = found[start : start + _CHUNK]
        glances = _glances(r, [delivery_id for delivery_id, _ in part])
        for (delivery_id, at), glance in zip(part, glances, strict=True):
            if glance is not None and glance.status == "dead":
                chosen.append(delivery_id)
            elif glance is None or glance.status == "delivered":
                stale.append((delivery_id, at, glance.endpoint_id if glance else None))
    _forget_stale(r, index, stale)
    return chosen


def expiring_entry(delivery_id: str, endpoint_id: str) -> str:
    """A delivery's entry on `sb:deliveries:expiring`, which names the listings it is on."""
    return f"{delivery_id}|{endpoint_id}"


def forget_expired(r: Redis, *, max_chunks: int) -> int:
    """Take the deliveries whose record has expired off `sb:deliveries` and their endpoints'
    indexes, from the entries of `sb:deliveries:expiring` that have come due, at most
    `max_chunks` round trips of them; returns how many went. An entry whose record is still
    there moves to the record's time to live, or goes when it has none (replayed: its next
    end writes one again)."""
    forgotten = 0
    for _ in range(max_chunks):
        now_ms = clock.now_ms()
        due = r.zrangebyscore(keys.EXPIRING, "-inf", now_ms, start=0, num=_CHUNK, withscores=True)
        if not due:
            break
        named = [entry.partition("|")[::2] for entry, _ in due]
        pipe = r.pipeline(transaction=False)
        for delivery_id, _ in named:
            pipe.pttl(keys.delivery(ids.conversation_of_delivery(delivery_id), delivery_id))
        ttls = pipe.execute()
        gone: dict[str, list[str]] = {}
        settled: list[str | float] = []
        for (entry, at), (delivery_id, endpoint_id), ttl in zip(due, named, ttls, strict=True):
            if ttl == -2:
                gone.setdefault(endpoint_id, []).append(delivery_id)
            settled += [entry, at, now_ms + ttl if ttl >= 0 else ""]
        pipe = r.pipeline(transaction=False)
        for endpoint_id, delivery_ids in gone.items():
            pipe.zrem(keys.DELIVERIES, *delivery_ids)
            pipe.zrem(keys.endpoint_deliveries(endpoint_id), *delivery_ids)
        pipe.execute()
        # Last: should we stop before, the next pass finds these entries again.
        scripts.run(r, "index_settle", [keys.EXPIRING], settled)
        forgotten += sum(len(delivery_ids) for delivery_ids in gone.values())
        if len(due) < _CHUNK:
            break
    return forgotten


def _forget_stale(r: Redis, read: str, stale: Sequence[tuple[str, float, str | None]]) -> None:
    """Drop the dead-index entries (id, time, endpoint if known), read from index `read`, of
    deliveries that turned out delivered, or gone: a replay cut short leaves them. One
    being replayed (queued) is left to its replay, which may yet see it die again."""
    if not stale:
        return
    by_index: dict[str, list[str | float]] = {}
    for delivery_id, at, endpoint_id in stale:
        indexes = {read, keys.DEAD, *([keys.endpoint_dead(endpoint_id)] if endpoint_id else [])}
        for index in indexes:
            by_index.setdefault(index, []).extend((delivery_id, at, ""))

    def build(pipe: Pipeline) -> None:
        for index, entries in by_index.items():
            scripts.add(pipe, "index_settle", [index], entries)

    scripts.execute(r, build)
