"""Listings of deliveries at scale: each endpoint's dead letters, and each conversation's
deliveries, come from an index of their own (exact, whatever else there is), and a walk by
status says when it stopped counting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from broker.core import keys
from broker.delivery import delivery_index, endpoint_store, fanout, replay
from broker.delivery import scheduler as delivery_scheduler
from tests.polling import wait_until
from tests.receivers import ReceiverFactory, always
from tests.web_app import ADMIN, WebApp, web_app


@pytest.fixture
def web() -> Iterator[WebApp]:
    """One attempt per delivery: a failure is a dead letter at once."""
    with web_app(retry_schedule=(0.0,)) as made:
        yield made


def test_an_endpoint_s_dead_letters_are_its_own_index(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    failing = web.channel(webhookUrl=make_receiver(always(500)).url)
    other = web.channel(webhookUrl=make_receiver(always(500)).url)
    for n in range(3):
        web.say(failing, f"u{n}", "hi")
    web.say(other, "v", "hi")
    web.deliver_due()
    mine = keys.endpoint_dead(failing["id"])
    assert web.redis.zcard(mine) == 3 and web.redis.zcard(keys.DEAD) == 4
    listed = web.client.get(
        f"/v1/dead-letters?endpointId={failing['id']}&limit=2", headers=ADMIN
    ).get_json()
    assert listed["total"] == 3 and len(listed["items"]) == 2
    assert {i["endpointId"] for i in listed["items"]} == {failing["id"]}

    replayed = web.redis.zrange(mine, 0, 0)[0]
    assert replay.replay(web.redis, replayed)
    assert web.redis.zcard(mine) == 2  # it left the index with sb:dead
    assert len(delivery_index.dead_letter_ids(web.redis, endpoint_id=failing["id"])) == 2

    # Removing the endpoint finds its dead letters by its dead index too, should its index
    # of deliveries have lost them.
    web.redis.delete(keys.endpoint_deliveries(failing["id"]))
    endpoint_store.delete(web.redis, failing["id"])
    assert not web.redis.exists(mine)
    assert web.redis.zcard(keys.DEAD) == 1


def test_a_walk_by_status_says_when_it_stopped_counting(
    web: WebApp, make_receiver: ReceiverFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = web.channel(webhookUrl=make_receiver(always(200)).url)
    for n in range(5):
        web.say(channel, f"u{n}", "hi")
    web.deliver_due()
    listed = web.client.get("/v1/deliveries?status=delivered&limit=2", headers=ADMIN).get_json()
    assert listed["total"] == 5 and "scanLimited" not in listed
    monkeypatch.setattr(delivery_index, "SCAN_LIMIT", 3)
    monkeypatch.setattr(delivery_index, "_CHUNK", 3)
    listed = web.client.get("/v1/deliveries?status=delivered&limit=2", headers=ADMIN).get_json()
    assert listed["total"] == 3 and listed["scanLimited"] is True
    assert len(listed["items"]) == 2 and {i["status"] for i in listed["items"]} == {"delivered"}


def test_a_session_s_deliveries_are_found_past_any_walk(
    web: WebApp, make_receiver: ReceiverFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_index, "SCAN_LIMIT", 3)
    monkeypatch.setattr(delivery_index, "_CHUNK", 3)
    monkeypatch.setattr(fanout, "SESSION_DELIVERIES", 3)
    monkeypatch.setattr(delivery_index, "SESSION_DELIVERIES", 3)
    ok = web.channel(webhookUrl=make_receiver(always(200)).url)
    failing = web.channel(webhookUrl=make_receiver(always(500)).url)
    for n in range(4):
        web.say(ok, "alice", f"hi {n}")
    web.say(failing, "alice", "hello")
    for n in range(6):  # newer traffic of others, past the walk's limit
        web.say(ok, f"other{n}", "hi")
    web.deliver_due()

    def listed(query: str) -> dict[str, Any]:
        answer = web.client.get(f"/v1/deliveries?sessionId=alice&{query}", headers=ADMIN)
        assert answer.status_code == 200
        found: dict[str, Any] = answer.get_json()
        return found

    everything = listed("limit=10")
    # The newest 3 of the conversation on `ok` (its index keeps 3, and says it is full), and
    # the one on `failing`.
    assert everything["total"] == 4 and everything["scanLimited"] is True
    items = everything["items"]
    texts = [i["body"]["message"]["text"] for i in items]
    assert texts == ["You said: hello", "You said: hi 3", "You said: hi 2", "You said: hi 1"]
    assert {i["sessionId"] for i in items} == {"alice"}
    dead = listed("status=dead")
    assert dead["total"] == 1 and [i["endpointId"] for i in dead["items"]] == [failing["id"]]
    on_ok = listed(f"endpointId={ok['id']}&limit=2&page=2")
    assert on_ok["total"] == 3 and [i["body"]["message"]["text"] for i in on_ok["items"]] == [
        "You said: hi 1"
    ]
    assert listed("status=queued")["total"] == 0

    # The index goes with its conversation.
    web.client.delete(f"/v1/bots/{ok['botId']}/channels/webhook/{ok['id']}", headers=ADMIN)
    left = listed("limit=10")
    assert left["total"] == 1 and "scanLimited" not in left


def test_a_delivery_is_listed_for_as_long_as_its_record_is_kept(
    make_receiver: ReceiverFactory,
) -> None:
    """Past the log retention, a delivery that waits (for its endpoint, or for a retry far
    off) or is dead (kept the dead retention) is still listed; only the delivered one,
    whose record that retention ends, leaves the listings, and no count counts it
    meanwhile."""
    with web_app(log_retention=1.0, retry_schedule=(0.0,)) as web:
        delivered = web.channel(webhookUrl=make_receiver(always(200)).url)
        dead = web.channel(webhookUrl=make_receiver(always(500)).url)
        retried = web.channel(webhookUrl=make_receiver(always(500)).url)
        path = f"/v1/bots/{retried['botId']}/channels/webhook/{retried['id']}"
        web.client.patch(path, json={"retrySchedule": [0, 3600]}, headers=ADMIN)
        held = web.channel(webhookUrl=make_receiver(always(200)).url)
        web.client.post(f"/v1/endpoints/{held['id']}/disable", headers=ADMIN)
        for channel in (delivered, dead, retried, held):
            web.say(channel, "u", "hi")
        web.deliver_due()
        (gone,) = web.redis.zrange(keys.endpoint_deliveries(delivered["id"]), 0, -1)

        wait_until(
            lambda: web.client.get(f"/v1/deliveries/{gone}", headers=ADMIN).status_code == 404,
            what="the delivered one's record to expire",
        )

        def listed(query: str = "") -> dict[str, Any]:
            page: dict[str, Any] = web.client.get(
                f"/v1/deliveries{query}", headers=ADMIN
            ).get_json()
            assert page["total"] == len(page["items"]), page
            return page

        # Before the scheduler's next pass, and after its pass and its housekeeping.
        for _ in range(2):
            everything = listed()
            assert sorted(i["endpointId"] for i in everything["items"]) == sorted(
                [dead["id"], retried["id"], held["id"]]
            )
            assert listed(f"?endpointId={delivered['id']}")["total"] == 0
            for channel, status in ((dead, "dead"), (retried, "queued"), (held, "waiting")):
                (item,) = listed(f"?endpointId={channel['id']}")["items"]
                assert item["status"] == status
            (waiting,) = listed("?status=waiting")["items"]
            assert waiting["endpointId"] == held["id"]
            delivery_scheduler.forget_expired(web.redis)
            delivery_scheduler.housekeep(web.redis, web.settings)
        assert web.redis.zcard(keys.EXPIRING) == 1  # the dead one's, for its 30 days
