"""One message through the whole real path: web process -> Redis -> worker process -> receiver."""

from __future__ import annotations

import standardwebhooks

from tests.integration.stacks import Api
from tests.polling import wait_until
from tests.receivers import Receiver, texts, wait_delivered


def test_message_reaches_the_receiver_signed(api: Api, receiver: Receiver) -> None:
    channel = api.echo_channel(receiver.url)

    answer = api.send(channel, "user-42", "I want a pizza")

    assert answer.status_code == 202
    assert answer.json()["sessionId"] == "user-42"
    assert answer.json()["status"] == "queued"
    (hit,) = wait_until(receiver.delivered, what="the reply")
    verified = standardwebhooks.Webhook(channel["signingSecret"]).verify(hit.raw, hit.headers)
    assert verified["message"] == {"text": "You said: I want a pizza"}
    assert verified["recipient"] == {"id": "user-42"}
    assert verified["senderId"] == "user-42"
    assert verified["verifyToken"] == channel["verifyToken"]
    assert verified["messageCounter"] == 1
    assert verified["botId"] == channel["botId"]
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["user-agent"].startswith("Switchboard-Webhooks/")
    assert hit.webhook_id.startswith("msg_")


def test_a_conversation_arrives_in_order(api: Api, receiver: Receiver) -> None:
    channel = api.echo_channel(receiver.url)
    api.send(channel, "user-7")
    for n in range(5):
        assert api.send(channel, "user-7", f"message {n}").status_code == 202

    hits = wait_delivered(receiver, 6)

    assert texts(hits) == ["Hello! I repeat what you say."] + [
        f"You said: message {n}" for n in range(5)
    ]
    assert [hit.body["messageCounter"] for hit in hits] == [1, 2, 3, 4, 5, 6]


def test_a_repeated_idempotency_key_is_processed_once(api: Api, receiver: Receiver) -> None:
    channel = api.echo_channel(receiver.url)
    first = api.send(channel, "user-1", "once", messageId="m-1")
    again = api.send(channel, "user-1", "once", messageId="m-1")
    api.send(channel, "user-1", "twice")

    wait_delivered(receiver, 2)
    assert first.json()["messageId"] == again.json()["messageId"] == "m-1"
    assert texts(receiver.delivered()) == [
        "You said: once",
        "You said: twice",
    ]
