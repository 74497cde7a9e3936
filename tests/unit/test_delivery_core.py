"""The delivery core on fakeredis with a scripted client: fan-out, order, outcomes, replay."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from redis.exceptions import ResponseError

from broker.core import clock, ids, keys, scripts
from broker.core.connection import Redis
from broker.core.errors import Conflict, NotFound
from broker.core.locks import Lock
from broker.core.settings import Settings
from broker.delivery import delivery_index, endpoint_store, fanout, health, records, replay
from broker.delivery.endpoint import Endpoint
from broker.delivery.http_client import AttemptResult
from broker.delivery.records import queue_ref
from tests.delivery_work import due_entries, new_delivery, work_due, work_queue
from tests.fakes import RecordingSender, RoundTrips, ScriptedClient

EP = "ch_core"


@pytest.fixture
def r(fake_redis: Redis) -> Iterator[Redis]:
    endpoint_store.save(
        fake_redis,
        Endpoint(id=EP, kind="channel", bot_id="b", url="http://x/", secret="whsec_QUJD"),
    )
    yield fake_redis


def fan_out(r: Redis, settings: Settings, conversation_key: str, texts: list[str]) -> list[str]:
    new = [new_delivery(conversation_key, EP, text, 1000.0 + i) for i, text in enumerate(texts)]
    lock = Lock(r, keys.conversation_lock(conversation_key), settings.claim_lease)
    assert lock.acquire()
    fanout.commit_turn(
        r,
        settings,
        RecordingSender(),
        fanout.TurnCommit(conversation_key, meta={"state": "x"}, deliveries=new),
        lock.token,
    )
    lock.release()
    return [d.id for d in new]


def test_a_turn_whose_lock_was_lost_lists_no_delivery(r: Redis, settings: Settings) -> None:
    conversation_key = "c" * 20
    lost = new_delivery(conversation_key, EP, "unsaved")
    commit = fanout.TurnCommit(conversation_key, meta={"state": "x"}, deliveries=[lost])
    (done,) = fanout.commit_turns(
        r, settings, [commit], lock_token="not-held", claim_token="t", end_turns=True
    )
    assert done.lost
    assert not r.exists(keys.delivery(conversation_key, lost.id))
    assert r.zscore(keys.DELIVERIES, lost.id) is None
    assert not r.exists(keys.endpoint_deliveries(EP))


def test_a_crash_right_after_the_turn_still_leaves_the_queue_to_the_scheduler(
    r: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = scripts.execute

    def dies_after_the_turn(client: Redis, build: Any, **options: Any) -> Any:
        real(client, build, **options)
        raise ConnectionError("the worker died here")

    monkeypatch.setattr(scripts, "execute", dies_after_the_turn)
    conversation_key = "a" * 20
    with pytest.raises(ConnectionError):
        fan_out(r, settings, conversation_key, ["one", "two"])
    ref = queue_ref(conversation_key, EP)
    assert due_entries(r, ref)
    assert r.llen(keys.fifo(conversation_key, EP)) == 2
    monkeypatch.setattr(scripts, "execute", real)
    client = ScriptedClient()
    work_queue(r, settings, client, ref)
    assert [sent.text for sent in client.sent] == ['{"text":"one"}', '{"text":"two"}']
    assert due_entries(r, ref) == {}


def test_a_queue_already_waiting_keeps_its_time_when_more_arrives(
    r: Redis, settings: Settings
) -> None:
    conversation_key = "b" * 20
    ref = queue_ref(conversation_key, EP)
    (head,) = fan_out(r, settings, conversation_key, ["one"])
    (member,) = due_entries(r, ref)
    r.zadd(keys.DUE, {member: 5e9})  # a retry far ahead
    r.hset(keys.delivery(conversation_key, head), "nextAttemptAt", 5e9)
    r.delete(keys.fifo_lock(conversation_key, EP))  # let go until then
    fan_out(r, settings, conversation_key, ["two"])
    assert due_entries(r, ref) == {member: 5e9}


def test_order_retry_dead_letter_and_replay(r: Redis, settings: Settings) -> None:
    conversation_key = "c" * 20
    ref = queue_ref(conversation_key, EP)
    first, second = fan_out(r, settings, conversation_key, ["one", "two"])
    failing = ScriptedClient(*[AttemptResult(500, 3, response="no") for _ in range(3)])
    run = work_queue(r, settings, failing, ref)
    assert run.attempts == 1
    view = records.view(r, first)
    assert view["status"] == "queued" and "nextAttemptAt" in view
    assert records.view(r, second)["status"] == "waiting"
    due = min(due_entries(r, ref).values(), default=None)
    assert due is not None and float(view["attempts"][0]["durationMs"]) == 3
    # The retries, due at once for the test: the head dies, then the next one goes.
    for _ in range(2):
        r.hset(keys.delivery(conversation_key, first), "nextAttemptAt", "0")
        work_queue(r, settings, failing, ref)
    assert records.view(r, first)["status"] == "dead"
    assert records.view(r, second)["status"] == "delivered"
    assert delivery_index.dead_letter_ids(r) == [first]
    assert [sent.text for sent in failing.sent] == ['{"text":"one"}'] * 3 + ['{"text":"two"}']

    assert replay.replay(r, first) is True
    assert replay.replay(r, first) is False  # already on its way
    assert delivery_index.dead_letter_ids(r) == []
    fixed = ScriptedClient()
    work_queue(r, settings, fixed, ref)
    again = records.view(r, first)
    assert again["status"] == "delivered" and len(again["attempts"]) == 4
    assert fixed.sent[0].headers["webhook-id"] == first


def test_replaying_a_delivery_waiting_for_its_retry_makes_that_attempt_now(
    r: Redis, settings: Settings
) -> None:
    conversation_key = "f" * 20
    ref = queue_ref(conversation_key, EP)
    first, second = fan_out(r, settings, conversation_key, ["one", "two"])
    client = ScriptedClient(AttemptResult(429, 3, retry_after="3600"))
    work_queue(r, settings, client, ref)
    assert records.view(r, first)["nextAttemptAt"] > clock.iso(clock.now() + 3000)
    assert replay.replay(r, second) is False  # behind the first, it keeps its place
    assert replay.replay(r, first) is True
    assert "nextAttemptAt" not in records.view(r, first)
    assert replay.replay(r, first) is False  # its attempt is already due
    work_queue(r, settings, client, ref)
    assert [sent.text for sent in client.sent] == ['{"text":"one"}'] * 2 + ['{"text":"two"}']
    assert records.view(r, first)["status"] == records.view(r, second)["status"] == "delivered"
    assert len(records.view(r, first)["attempts"]) == 2  # the same round of attempts


def test_an_attempt_an_operator_asked_for_waits_for_an_open_circuit_uncounted(
    r: Redis, settings: Settings
) -> None:
    touchy = replace(
        settings, circuit_threshold=1, circuit_cooldown=600.0, retry_schedule=(0, 60, 60, 60)
    )
    x, y = "x" * 20, "y" * 20
    (first,) = fan_out(r, touchy, x, ["one"])
    (second,) = fan_out(r, touchy, y, ["two"])
    failing = ScriptedClient(*[AttemptResult(500, 3) for _ in range(3)])
    work_queue(r, touchy, failing, queue_ref(x, EP))  # fails: the circuit opens
    work_queue(r, touchy, failing, queue_ref(y, EP))  # held back, unsent, by the schedule
    assert len(records.view(r, second)["attempts"]) == 1
    # An operator hurries both: the first is the probe, and fails; the circuit stays open.
    assert replay.replay(r, first) and replay.replay(r, second)
    work_queue(r, touchy, failing, queue_ref(x, EP))
    assert health.view(r, endpoint_store.load(r, EP))["state"] == "circuit_open"
    work_queue(r, touchy, failing, queue_ref(y, EP))
    assert len(failing.sent) == 2
    held = records.view(r, second)
    assert len(held["attempts"]) == 1 and held["status"] == "queued"


def test_410_disables_and_holds_the_queue_until_enabled(r: Redis, settings: Settings) -> None:
    conversation_key = "d" * 20
    ref = queue_ref(conversation_key, EP)
    first, _second = fan_out(r, settings, conversation_key, ["one", "two"])
    gone = ScriptedClient(AttemptResult(410, 1))
    work_queue(r, settings, gone, ref)
    assert len(gone.sent) == 1
    view = health.view(r, endpoint_store.load(r, EP))
    assert view["state"] == "disabled" and "410" in view["disabledReason"]
    assert r.sismember(keys.endpoint_parked(EP), ref)
    assert due_entries(r, ref) == {}
    assert records.view(r, first)["status"] == "waiting"
    r.hset(keys.delivery(conversation_key, first), "nextAttemptAt", "1000")  # a retry was due
    assert "nextAttemptAt" not in records.view(r, first)  # none is planned while disabled
    assert health.enable(r, EP) == 1
    back = ScriptedClient()
    work_queue(r, settings, back, ref)
    assert [sent.text for sent in back.sent] == ['{"text":"one"}', '{"text":"two"}']


def test_replay_of_a_record_that_expired_is_passed_over(r: Redis, settings: Settings) -> None:
    assert replay.replay_many(r, [ids.delivery_id("e" * 20, ids.random_hex(8), 1)]) == 0


class RemovingClient(ScriptedClient):
    """Answers 500, and the endpoint is removed while the request is out."""

    def __init__(self, r: Redis) -> None:
        super().__init__(AttemptResult(500, 1))
        self.r = r

    async def post(self, url: str, body: bytes, headers: Any, **timeouts: Any) -> AttemptResult:
        endpoint_store.delete(self.r, EP)
        return await super().post(url, body, headers, **timeouts)


def test_an_attempt_whose_endpoint_went_meanwhile_records_nothing(
    r: Redis, settings: Settings
) -> None:
    conversation_key = "f" * 20
    ref = queue_ref(conversation_key, EP)
    first, second = fan_out(r, settings, conversation_key, ["one", "two"])

    work_queue(r, settings, RemovingClient(r), ref)

    for delivery_id in (first, second):
        assert not r.exists(keys.delivery(conversation_key, delivery_id))
        assert not r.exists(keys.delivery_attempts(conversation_key, delivery_id))
        with pytest.raises(NotFound):
            records.view(r, delivery_id)
    # The rest of the queue is passed over when it is next looked at, and it is let go.
    work_queue(r, settings, ScriptedClient(), ref)
    assert not r.exists(keys.fifo(conversation_key, EP))
    assert due_entries(r, ref) == {}


def test_the_remains_of_a_record_are_passed_over_and_removed(r: Redis, settings: Settings) -> None:
    conversation_key = "g" * 20
    ref = queue_ref(conversation_key, EP)
    first, _second = fan_out(r, settings, conversation_key, ["one", "two"])
    remains = keys.delivery(conversation_key, first)
    r.delete(remains)
    r.hset(remains, mapping={"attemptCount": 1, "nextAttemptAt": 0})
    with pytest.raises(NotFound):
        records.load(r, first)

    sent = ScriptedClient()
    work_queue(r, settings, sent, ref)

    assert [item.text for item in sent.sent] == ['{"text":"two"}']
    assert not r.exists(remains)


def test_removing_an_endpoint_removes_what_its_parked_queues_hold(
    r: Redis, settings: Settings
) -> None:
    conversation_key = "h" * 20
    ref = queue_ref(conversation_key, EP)
    held = fan_out(r, settings, conversation_key, ["one", "two"])
    work_queue(r, settings, ScriptedClient(AttemptResult(410, 1)), ref)
    assert r.sismember(keys.endpoint_parked(EP), ref)
    # Held past the log retention: the endpoint's index of deliveries no longer names them.
    r.delete(keys.endpoint_deliveries(EP))

    endpoint_store.delete(r, EP)

    for delivery_id in held:
        assert not r.exists(keys.delivery(conversation_key, delivery_id))
        assert not r.exists(keys.delivery_attempts(conversation_key, delivery_id))
    assert not r.exists(keys.fifo(conversation_key, EP))
    assert not r.exists(keys.endpoint_parked(EP))


def test_a_dead_letter_whose_endpoint_went_is_not_replayed(r: Redis, settings: Settings) -> None:
    conversation_key = "k" * 20
    ref = queue_ref(conversation_key, EP)
    (dead,) = fan_out(r, settings, conversation_key, ["one"])
    work_queue(r, settings, ScriptedClient(AttemptResult(500, 1)), ref)
    r.hset(keys.delivery(conversation_key, dead), "status", "dead")
    r.delete(keys.endpoint_deliveries(EP))  # past the log retention: the index forgot it
    endpoint_store.delete(r, EP)

    with pytest.raises(Conflict, match="was removed"):
        replay.replay(r, dead)
    assert replay.replay_many(r, [dead]) == 0


def test_after_a_410_the_endpoint_s_other_queues_send_nothing(r: Redis, settings: Settings) -> None:
    fan_out(r, settings, "m" * 20, ["one"])
    fan_out(r, settings, "n" * 20, ["two"])
    gone = ScriptedClient(AttemptResult(410, 1), AttemptResult(410, 1))

    work_due(r, settings, gone)  # one worker's run, which knows the endpoint as it saw it

    assert len(gone.sent) == 1
    assert r.scard(keys.endpoint_parked(EP)) == 2


def test_a_last_attempt_whose_endpoint_went_meanwhile_lists_no_dead_letter(
    r: Redis, settings: Settings
) -> None:
    settings = settings.with_changes(retry_schedule=(0.0,))  # one attempt, then dead
    conversation_key = "p" * 20
    (only,) = fan_out(r, settings, conversation_key, ["one"])

    work_queue(r, settings, RemovingClient(r), queue_ref(conversation_key, EP))

    assert r.zscore(keys.DEAD, only) is None


def test_a_bulk_replay_passes_over_what_is_no_longer_dead(r: Redis, settings: Settings) -> None:
    """Two bulk replays at once: the second finds the first's deliveries queued or already
    delivered again, and must not send them once more."""
    conversation_key = "q" * 20
    ref = queue_ref(conversation_key, EP)
    (delivery_id,) = fan_out(r, settings, conversation_key, ["one"])
    work_queue(r, settings, ScriptedClient(AttemptResult(500, 1)), ref)
    r.hset(keys.delivery(conversation_key, delivery_id), "status", "dead")
    assert replay.replay_many(r, [delivery_id]) == 1
    assert replay.replay_many(r, [delivery_id]) == 0  # queued again by the first
    work_queue(r, settings, ScriptedClient(AttemptResult(200, 1)), ref)
    assert r.hget(keys.delivery(conversation_key, delivery_id), "status") == "delivered"
    assert replay.replay_many(r, [delivery_id]) == 0  # delivered by the first's replay
    assert replay.replay(r, delivery_id)  # one by one, an operator may send it again


def test_a_bulk_replay_takes_a_few_round_trips_per_chunk_not_per_letter(
    r: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead: list[str] = []
    for n in range(150):
        conversation_key = f"{n:020d}"
        for delivery_id in fan_out(r, settings, conversation_key, ["one", "two", "three"]):
            r.hset(keys.delivery(conversation_key, delivery_id), "status", "dead")
            dead.append(delivery_id)
    round_trips = RoundTrips(r, monkeypatch)
    assert replay.replay_many(r, [*dead, dead[0]]) == 450
    assert round_trips.count <= 20  # 3 chunks of 200 at most, 4 round trips each, and the probe
    queued = [r.hget(keys.delivery(ids.conversation_of_delivery(d), d), "status") for d in dead]
    assert set(queued) == {"queued"}


def test_dead_index_entries_a_cut_short_replay_left_are_dropped_when_found(
    r: Redis, settings: Settings
) -> None:
    """A replay that died between its scripts and its removal of the index entries leaves
    delivered deliveries on the dead indexes: listings and bulk replays drop them."""
    conversation_key = "s" * 20
    delivered, queued, dead = fan_out(r, settings, conversation_key, ["a", "b", "c"])
    for delivery_id, status in ((delivered, "delivered"), (queued, "queued"), (dead, "dead")):
        r.hset(keys.delivery(conversation_key, delivery_id), "status", status)
    gone = ids.delivery_id(conversation_key, ids.random_hex(8), 1)  # its record expired
    for n, delivery_id in enumerate((delivered, queued, dead, gone)):
        r.zadd(keys.DEAD, {delivery_id: 1000 + n})
        r.zadd(keys.endpoint_dead(EP), {delivery_id: 1000 + n})

    page = delivery_index.dead_letter_page(r, offset=0, limit=10)
    assert [item["id"] for item in page.items] == [dead] and page.total == 2
    assert r.zrange(keys.DEAD, 0, -1) == [queued, dead]  # the one being replayed stays
    # The endpoint of one whose record is gone is not known: its index keeps it until a
    # listing of that index drops it (or the dead retention).
    assert r.zrange(keys.endpoint_dead(EP), 0, -1) == [queued, dead, gone]
    r.zadd(keys.endpoint_dead(EP), {delivered: 1000})
    assert delivery_index.dead_letter_ids(r, endpoint_id=EP) == [dead]
    assert r.zrange(keys.endpoint_dead(EP), 0, -1) == [queued, dead]

    # One that died again meanwhile has a new time on the index: it stays.
    r.zadd(keys.DEAD, {delivered: 5000})
    delivery_index.dead_letter_page(r, offset=0, limit=10)
    assert r.zscore(keys.DEAD, delivered) is None
    r.zadd(keys.DEAD, {delivered: 6000})
    found = r.zrange(keys.DEAD, 0, -1, withscores=True)
    # As if read at time 5000, before it died again at 6000.
    scripts.run(r, "index_settle", [keys.DEAD], [delivered, 5000, ""])
    assert r.zrange(keys.DEAD, 0, -1, withscores=True) == found


def test_deliveries_leave_the_listings_when_their_record_expires(
    r: Redis, settings: Settings
) -> None:
    """A delivery whose record is given a time to live is put on `sb:deliveries:expiring` at
    its end; when that comes due, one whose record is gone leaves the listings, one
    replayed meanwhile (no time to live) stays listed without an entry, and one whose record
    lives on (its entry was early) stays with its entry moved to the record's expiry."""
    conversation_key = "e" * 20
    replayed, gone, kept = fan_out(r, settings, conversation_key, ["one", "two", "three"])
    work_queue(r, settings, ScriptedClient(), queue_ref(conversation_key, EP))
    entries = {i: delivery_index.expiring_entry(i, EP) for i in (replayed, gone, kept)}
    expires = clock.now_ms() + settings.log_retention * 1000
    for entry in entries.values():
        assert abs((r.zscore(keys.EXPIRING, entry) or 0) - expires) < 5000
    assert replay.replay(r, replayed)
    r.delete(keys.delivery(conversation_key, gone))
    r.zadd(keys.EXPIRING, dict.fromkeys(entries.values(), 0))

    assert delivery_index.forget_expired(r, max_chunks=1) == 1

    for index in (keys.DELIVERIES, keys.endpoint_deliveries(EP)):
        assert set(r.zrange(index, 0, -1)) == {replayed, kept}
    assert r.zrange(keys.EXPIRING, 0, -1) == [entries[kept]]
    assert abs((r.zscore(keys.EXPIRING, entries[kept]) or 0) - expires) < 5000
    assert delivery_index.forget_expired(r, max_chunks=1) == 0


def test_a_listing_answers_while_redis_takes_no_writes(
    r: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing first takes expired deliveries off the index, a write: out of memory, it
    lists what the index holds instead of failing."""
    (delivered,) = fan_out(r, settings, "f" * 20, ["one"])

    def out_of_memory(*_: Any, **__: Any) -> None:
        # As a script's refusal comes: a plain ResponseError.
        raise ResponseError("OOM command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(delivery_index, "forget_expired", out_of_memory)
    page = delivery_index.list_page(r, offset=0, limit=10)
    assert [view["id"] for view in page.items] == [delivered]
