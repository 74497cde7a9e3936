"""The attempt log and the delivery listings, read back through the management API."""

from __future__ import annotations

from broker.core import clock
from tests.integration.delivery_helpers import deliveries, delivery
from tests.integration.stacks import Api
from tests.polling import wait_until
from tests.receivers import Answer, Hit, Receiver, ReceiverFactory


def test_every_attempt_is_logged_with_its_outcome(api: Api, receiver: Receiver) -> None:
    def answers(hit: Hit) -> Answer:
        if hit.try_number == 1:
            return Answer(500, body="é".encode() * 3000)  # 6000 bytes
        return Answer(200, body=b'{"ok":true}')

    receiver.behaviour = answers
    channel = api.echo_channel(receiver.url, retrySchedule=[0, 0.05])
    sent_at = clock.now()
    api.send(channel, "logged", "hi")
    wait_until(receiver.delivered, what="the reply")

    (listed,) = wait_until(
        lambda: deliveries(api, endpointId=channel["id"], status="delivered"), what="delivered"
    )
    item = delivery(api, listed["id"])
    assert item == listed
    assert item["id"] == receiver.hits[0].webhook_id == receiver.hits[1].webhook_id
    assert item["endpointId"] == channel["id"] and item["botId"] == channel["botId"]
    assert item["sessionId"] == "logged" and item["kind"] == "message"
    assert item["body"]["message"] == {"text": "You said: hi"}
    assert sent_at - 1 <= clock.parse_iso(item["createdAt"]) <= clock.parse_iso(item["deliveredAt"])
    failed, ok = item["attempts"]
    assert failed["statusCode"] == 500
    assert failed["error"] == "HTTP 500: " + "é" * 197 + "..."  # the status and first bytes
    assert len(failed["response"].encode()) <= 4096
    assert failed["response"].startswith("é" * 2047)
    assert ok == {
        "at": ok["at"],
        "statusCode": 200,
        "durationMs": ok["durationMs"],
        "response": '{"ok":true}',
    }
    assert isinstance(ok["durationMs"], int) and ok["durationMs"] >= 0
    assert clock.parse_iso(failed["at"]) < clock.parse_iso(ok["at"])


def test_a_timeout_is_logged_with_its_error(api: Api, receiver: Receiver) -> None:
    receiver.behaviour = lambda hit: Answer(200, delay=2) if hit.try_number == 1 else Answer(200)
    channel = api.echo_channel(receiver.url, retrySchedule=[0, 0.05], totalTimeout=0.3)
    api.send(channel, "slow", "hi")
    (item,) = wait_until(
        lambda: deliveries(api, endpointId=channel["id"], status="delivered"), what="delivered"
    )
    timed_out = item["attempts"][0]
    assert timed_out["error"] == "timeout after 0.3 s"
    assert "statusCode" not in timed_out and 250 <= timed_out["durationMs"] < 2000


def test_deliveries_are_filtered_by_status_endpoint_and_conversation(
    api: Api, make_receiver: ReceiverFactory
) -> None:
    good = make_receiver()
    bad = make_receiver(lambda hit: Answer(503))
    a = api.echo_channel(good.url)
    b = api.echo_channel(bad.url, retrySchedule=[0, 0.05])
    api.send(a, "s1", "one")
    api.send(a, "s2", "two")
    api.send(b, "s1", "three")
    api.send(b, "s1", "four")
    wait_until(lambda: len(deliveries(api, status="dead")) == 2, what="b's replies to die")
    # The records, not the receiver: an outcome is recorded just after the answer arrives.
    wait_until(lambda: len(deliveries(api, status="delivered")) == 2, what="a's replies")
    assert len(good.delivered()) == 2

    everything = deliveries(api)
    assert len(everything) == 4
    created = [item["createdAt"] for item in everything]
    assert created == sorted(created, reverse=True)  # newest first
    assert {item["body"]["message"]["text"] for item in deliveries(api, endpointId=a["id"])} == {
        "You said: one",
        "You said: two",
    }
    assert len(deliveries(api, status="delivered")) == 2
    assert len(deliveries(api, status="dead", endpointId=b["id"])) == 2
    assert deliveries(api, status="dead", endpointId=a["id"]) == []
    assert len(deliveries(api, sessionId="s1")) == 3
    assert len(deliveries(api, sessionId="s1", endpointId=a["id"])) == 1
    assert deliveries(api, status="queued") == []
    page = api.get("/v1/deliveries", params={"limit": "3", "page": "2"}).json()
    assert page["total"] == 4 and len(page["items"]) == 1 and page["page"] == 2

    assert api.get("/v1/deliveries", params={"status": "lost"}).status_code == 422
    missing = api.get("/v1/deliveries/msg_00000000000000000000ffffffffffffffff")
    assert missing.status_code == 404
    assert api.get("/v1/deliveries/nonsense").status_code == 404
