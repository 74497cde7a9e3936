"""Endpoint switches with real processes: 410 disables, disabled endpoints hold, enable resumes."""

from __future__ import annotations

from typing import Any

from broker.core import keys
from broker.core.connection import Redis
from tests.integration.delivery_helpers import deliveries, endpoint
from tests.integration.stacks import Api
from tests.polling import wait_until
from tests.receivers import (
    Answer,
    Hit,
    Receiver,
    ReceiverFactory,
    always,
    of_conversation,
    texts,
    wait_delivered,
)


def test_410_disables_the_endpoint_and_its_deliveries_wait_for_enable(
    api: Api, receiver: Receiver, data: Redis
) -> None:
    receiver.behaviour = always(410, body=b"this hook is gone")
    channel = api.echo_channel(receiver.url)
    api.send(channel, "left", "one")

    wait_until(lambda: endpoint(api, channel["id"])["state"] == "disabled", what="disabled")
    view = endpoint(api, channel["id"])
    assert view["disabledReason"] == "the endpoint answered 410 Gone"
    assert view["lastError"] == "HTTP 410: this hook is gone"
    listed = api.get("/v1/endpoints").json()
    states = {item["id"]: item["state"] for item in listed["items"]}
    assert states[channel["id"]] == "disabled"

    # Later replies wait; none is attempted, none is dropped.
    api.send(channel, "left", "two")
    api.send(channel, "right", "three")
    wait_until(
        lambda: data.scard(keys.endpoint_parked(channel["id"])) == 2, what="both queues held"
    )
    assert len(receiver.hits) == 1
    items = deliveries(api, endpointId=channel["id"])
    assert sorted(item["status"] for item in items) == ["waiting"] * 3
    assert deliveries(api, endpointId=channel["id"], status="waiting") == items

    receiver.behaviour = always(200)
    enabled = api.post(f"/v1/endpoints/{channel['id']}/enable")
    assert enabled.status_code == 200
    assert enabled.json()["state"] == "healthy" and enabled.json()["queuesResumed"] == 2
    wait_delivered(receiver, 3, "the held replies")
    assert texts(of_conversation(receiver.delivered(), "left")) == [
        "You said: one",
        "You said: two",
    ]
    assert texts(of_conversation(receiver.delivered(), "right")) == ["You said: three"]


def test_an_operator_disables_an_endpoint_and_nothing_is_lost(
    api: Api, receiver: Receiver, data: Redis
) -> None:
    channel = api.echo_channel(receiver.url)
    answer = api.post(f"/v1/endpoints/{channel['id']}/disable")
    assert answer.status_code == 200
    assert answer.json()["state"] == "disabled"
    assert answer.json()["disabledReason"] == "disabled by an operator"
    for n in range(3):
        api.send(channel, "held", f"m{n}")

    def held() -> bool:
        items = deliveries(api, endpointId=channel["id"])
        return len(items) == 3 and data.scard(keys.endpoint_parked(channel["id"])) == 1

    wait_until(held, what="the replies held")
    assert receiver.hits == []
    assert all(item["status"] == "waiting" for item in deliveries(api, endpointId=channel["id"]))

    assert api.post(f"/v1/endpoints/{channel['id']}/enable").status_code == 200
    wait_delivered(receiver, 3, "the replies")
    assert texts(receiver.delivered()) == [f"You said: m{n}" for n in range(3)]
    assert api.post("/v1/endpoints/ch_nope/enable").status_code == 404


def test_endpoint_health_is_listed(api: Api, make_receiver: ReceiverFactory) -> None:
    good = make_receiver()

    def half(hit: Hit) -> Answer:
        return Answer(200 if hit.try_number > 1 else 500)

    flaky = make_receiver(half)
    a = api.echo_channel(good.url)
    b = api.echo_channel(flaky.url, retrySchedule=[0, 0.05, 0.05])
    api.send(a, "x", "hi")
    api.send(b, "y", "hi")
    wait_until(lambda: good.delivered() and flaky.delivered(), what="both replies")

    def listed() -> dict[str, Any]:
        return {item["id"]: item for item in api.get("/v1/endpoints").json()["items"]}

    # Outcomes are folded into endpoint health a moment after the attempts.
    wait_until(lambda: "lastSuccessAt" in listed()[b["id"]], what="the outcomes")
    views = listed()
    assert views[a["id"]]["state"] == "healthy" and views[a["id"]]["successRate"] == 1.0
    assert views[b["id"]]["successRate"] == 0.5
    assert views[b["id"]]["lastError"] == "HTTP 500"
    assert views[b["id"]]["kind"] == "channel" and views[b["id"]]["url"] == flaky.url
    assert "lastSuccessAt" in views[b["id"]]
