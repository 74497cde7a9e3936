"""The Webhook message API (docs/wire-contract.md §1a and §1c), in-process on a real Redis."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from broker.conversations import turns
from broker.core import ids, keys
from tests.web_app import WebApp, api_error, web_app
from tests.wire_fixtures import wire_fixture

pytestmark = pytest.mark.usefixtures("served_by")


@pytest.fixture
def web() -> Iterator[WebApp]:
    with web_app(max_body_bytes=4096) as made:
        yield made


@pytest.fixture
def channel(web: WebApp) -> dict[str, Any]:
    return web.channel()


def test_the_spec_example_is_queued_with_its_variables(
    web: WebApp, channel: dict[str, Any]
) -> None:
    answer = web.post_message(channel, wire_fixture("inbound_current.json"))
    assert answer.status_code == 202
    assert set(answer.get_json()) == set(wire_fixture("inbound_accepted.json"))
    assert answer.get_json()["sessionId"] == "user-42" and answer.get_json()["status"] == "queued"
    [queued] = web.inbox(channel, "user-42")
    assert queued["kind"] == "text" and queued["text"] == "I want a pizza"
    assert queued["sessionData"] == {"email": "a@b.c", "address.zipCode": "2000"}
    assert queued["messageId"] == answer.get_json()["messageId"]
    assert len(web.sender.turns) == 1


@pytest.mark.parametrize(
    ("message", "normal"),
    [
        ({"introMessage": {}}, {"kind": "intro"}),
        ({"textMessage": {"text": "hi"}}, {"kind": "text", "text": "hi"}),
        (
            {"postbackMessage": {"title": "Yes", "payload": "opaque-123"}},
            {"kind": "postback", "title": "Yes", "payload": "opaque-123"},
        ),
        (
            {
                "postbackMessage": {
                    "title": "Large",
                    "nextDialogstateId": "size",
                    "sessionDataToSet": [{"key": "size", "value": "L"}],
                }
            },
            {
                "kind": "postback",
                "title": "Large",
                "payload": None,
                "nextDialogstateId": "size",
                "sessionDataToSet": [{"key": "size", "value": "L"}],
            },
        ),
        (
            {"locationMessage": {"coordinates": {"lat": 51.2, "long": 4.4}}},
            {"kind": "location", "coordinates": {"lat": 51.2, "long": 4.4}},
        ),
    ],
)
def test_every_message_kind_is_queued_in_normal_form(
    web: WebApp, channel: dict[str, Any], message: dict[str, Any], normal: dict[str, Any]
) -> None:
    answer = web.post_message(channel, {"conversationId": "c1", "message": message})
    assert answer.status_code == 202, answer.get_json()
    [queued] = web.inbox(channel, "c1")
    assert {k: queued[k] for k in normal} == normal


def test_a_user_object_names_the_conversation(web: WebApp, channel: dict[str, Any]) -> None:
    user = {"id": "u-7", "firstName": "Ada", "lastName": "L", "preferredLanguage": "nl"}
    answer = web.post_message(channel, {"user": user, "message": {"introMessage": {}}})
    assert answer.status_code == 202
    assert answer.get_json()["sessionId"] == "u-7"
    [queued] = web.inbox(channel, "u-7")
    assert queued["user"] == user


@pytest.mark.parametrize("how", ["header", "messageId"])
def test_a_repeat_within_a_day_is_acknowledged_but_queued_once(
    web: WebApp, channel: dict[str, Any], how: str
) -> None:
    body: dict[str, Any] = {"conversationId": "c1", "message": {"textMessage": {"text": "once"}}}
    headers = {"Idempotency-Key": "key-1"} if how == "header" else {}
    if how == "messageId":
        body["messageId"] = "client-msg-1"
    first = web.post_message(channel, body, headers)
    second = web.post_message(channel, body, headers)
    assert first.status_code == second.status_code == 202
    assert first.get_json()["messageId"] == second.get_json()["messageId"]
    assert len(web.inbox(channel, "c1")) == 1
    conversation_key = ids.conversation_key(
        channel["botId"], channel["version"], channel["id"], "c1"
    )
    ttl = web.redis.ttl(
        keys.idempotency(conversation_key, "key-1" if how == "header" else "client-msg-1")
    )
    assert 23 * 3600 < ttl <= 24 * 3600


@pytest.mark.parametrize("how", ["header", "messageId"])
def test_a_key_used_again_for_another_message_is_refused(
    web: WebApp, channel: dict[str, Any], how: str
) -> None:
    def body(text: str) -> dict[str, Any]:
        sent: dict[str, Any] = {"conversationId": "c1", "message": {"textMessage": {"text": text}}}
        if how == "messageId":
            sent["messageId"] = "client-msg-1"
        return sent

    headers = {"Idempotency-Key": "key-1"} if how == "header" else {}
    first = web.post_message(channel, body("one"), headers)
    assert first.status_code == 202
    refused = web.post_message(channel, body("DIFFERENT"), headers)
    field = "Idempotency-Key" if how == "header" else "messageId"
    assert "another message" in api_error(refused, 422, "validation_failed", field)
    assert web.post_message(channel, body("one"), headers).status_code == 202
    assert [queued["text"] for queued in web.inbox(channel, "c1")] == ["one"]


@pytest.mark.parametrize("how", ["header", "messageId"])
def test_a_key_longer_than_256_characters_is_refused(
    web: WebApp, channel: dict[str, Any], how: str
) -> None:
    """Each is part of a Redis key's name: without the limit, a header of 8,000 characters
    was taken, and kept so for a day."""
    body: dict[str, Any] = {"conversationId": "c1", "message": {"textMessage": {"text": "hi"}}}
    headers = {"Idempotency-Key": "k" * 257} if how == "header" else {}
    if how == "messageId":
        body["messageId"] = "k" * 257
    field = "Idempotency-Key" if how == "header" else "messageId"
    api_error(web.post_message(channel, body, headers), 422, "validation_failed", field)
    assert web.inbox(channel, "c1") == []
    headers = {"Idempotency-Key": "k" * 256} if how == "header" else {}
    body["messageId"] = "k" * 256
    assert web.post_message(channel, body, headers).status_code == 202


def test_a_key_used_again_with_another_message_id_is_refused(
    web: WebApp, channel: dict[str, Any]
) -> None:
    def body(message_id: str) -> dict[str, Any]:
        return {
            "conversationId": "c1",
            "messageId": message_id,
            "message": {"textMessage": {"text": "same text"}},
        }

    headers = {"Idempotency-Key": "key-1"}
    assert web.post_message(channel, body("client-msg-1"), headers).status_code == 202
    refused = web.post_message(channel, body("client-msg-2"), headers)
    message = api_error(refused, 422, "validation_failed", "Idempotency-Key")
    assert "another message (client-msg-1)" in message
    assert [queued["messageId"] for queued in web.inbox(channel, "c1")] == ["client-msg-1"]


def test_a_refused_key_is_named_by_the_field_that_carried_it(
    web: WebApp, channel: dict[str, Any]
) -> None:
    def text(words: str, **sent: str) -> dict[str, Any]:
        return {"conversationId": "c1", "message": {"textMessage": {"text": words}}, **sent}

    headers = {"Idempotency-Key": "k-1"}
    assert web.post_message(channel, text("one"), headers).status_code == 202
    # The header's key, sent as a messageId: the messageId is to blame.
    refused = web.post_message(channel, text("one", messageId="k-1"))
    api_error(refused, 422, "validation_failed", "messageId")
    assert web.post_message(channel, text("two", messageId="m-1")).status_code == 202
    # A new header key with a messageId already used for another text.
    refused = web.post_message(channel, text("three", messageId="m-1"), {"Idempotency-Key": "k-2"})
    api_error(refused, 422, "validation_failed", "messageId")
    assert [queued["text"] for queued in web.inbox(channel, "c1")] == ["one", "two"]


def test_a_key_is_the_conversations_own(web: WebApp, channel: dict[str, Any]) -> None:
    for conversation in ("c1", "c2"):
        body = {"conversationId": conversation, "message": {"textMessage": {"text": "hi"}}}
        assert web.post_message(channel, body, {"Idempotency-Key": "key-1"}).status_code == 202
        assert len(web.inbox(channel, conversation)) == 1


def test_a_queued_message_is_acknowledged_though_its_safety_net_failed(
    web: WebApp, channel: dict[str, Any]
) -> None:
    """The turn's schedule entry comes after the script on the pipeline: when Redis refuses
    it (full, say) the message is queued all the same, and must not be answered 503."""
    web.redis.set(keys.TURNS, "not a sorted set")  # every ZADD to it fails
    body = {"conversationId": "c1", "message": {"textMessage": {"text": "kept"}}}
    answer = web.post_message(channel, body)
    web.redis.delete(keys.TURNS)
    assert answer.status_code == 202, answer.get_json()
    assert [queued["text"] for queued in web.inbox(channel, "c1")] == ["kept"]


def test_a_message_without_a_key_leaves_no_idempotency_record(
    web: WebApp, channel: dict[str, Any]
) -> None:
    body = {"conversationId": "c1", "message": {"textMessage": {"text": "once"}}}
    assert web.post_message(channel, body).status_code == 202
    assert web.post_message(channel, body).status_code == 202
    assert len(web.inbox(channel, "c1")) == 2
    assert list(web.redis.scan_iter(match="*:idem:*")) == []


@pytest.mark.parametrize("again", ["header", "messageId"])
def test_a_message_with_both_keys_is_a_repeat_by_either(
    web: WebApp, channel: dict[str, Any], again: str
) -> None:
    body: dict[str, Any] = {
        "conversationId": "c1",
        "messageId": "client-msg-1",
        "message": {"textMessage": {"text": "once"}},
    }
    first = web.post_message(channel, body, {"Idempotency-Key": "key-1"})
    if again == "header":
        repeat = {key: value for key, value in body.items() if key != "messageId"}
        second = web.post_message(channel, repeat, {"Idempotency-Key": "key-1"})
    else:
        second = web.post_message(channel, body)
    assert first.status_code == second.status_code == 202
    assert second.get_json()["messageId"] == "client-msg-1"
    assert len(web.inbox(channel, "c1")) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": {"textMessage": {"text": "x"}}}, "conversationId"),
        ({"conversationId": "c1"}, "message"),
        ({"conversationId": "c1", "message": {}}, "message"),
        (
            {
                "conversationId": "c1",
                "message": {"textMessage": {"text": "a"}, "introMessage": {}},
            },
            "message",
        ),
        ({"conversationId": "c1", "message": {"videoMessage": {}}}, "message.videoMessage"),
        ({"conversationId": "c1", "message": {"textMessage": {"text": ""}}}, None),
        ({"conversationId": "c1", "message": {"postbackMessage": {"title": "no target"}}}, None),
        (
            {
                "conversationId": "c1",
                "message": {"locationMessage": {"coordinates": {"lat": 91, "long": 0}}},
            },
            "message.locationMessage.coordinates.lat",
        ),
        ({"conversationId": 42, "message": {"introMessage": {}}}, "conversationId"),
        ({"conversationId": "c1", "message": {"introMessage": {}}, "sessionData": []}, None),
        ([1, 2], "body"),
    ],
)
def test_an_invalid_body_gets_422_and_nothing_is_queued(
    web: WebApp, channel: dict[str, Any], body: Any, field: str | None
) -> None:
    answer = web.post_message(channel, body)
    assert answer.status_code == 422, answer.get_json()
    if field is not None:
        assert answer.get_json()["error"]["field"] == field
    assert web.queued_keys() == [] and web.sender.turns == []


def test_without_or_with_a_wrong_token_the_answer_is_401(
    web: WebApp, channel: dict[str, Any]
) -> None:
    url = f"/v1/channels/webhook/{channel['id']}/messages"
    body = wire_fixture("inbound_current.json")
    api_error(web.client.post(url, json=body), 401, "unauthorized")
    wrong = {"Authorization": "Bearer sbat_not-the-token"}
    api_error(web.client.post(url, json=body, headers=wrong), 401, "unauthorized")
    other = web.channel()
    api_error(web.post_message({**other, "id": channel["id"]}, body), 401, "unauthorized")
    assert web.queued_keys() == []


def test_an_unknown_channel_is_404(web: WebApp, channel: dict[str, Any]) -> None:
    api_error(
        web.post_message({**channel, "id": "ch_nope"}, wire_fixture("inbound_current.json")),
        404,
        "not_found",
    )


def test_a_body_that_is_not_json_is_415_or_400(web: WebApp, channel: dict[str, Any]) -> None:
    url = f"/v1/channels/webhook/{channel['id']}/messages"
    auth = {"Authorization": f"Bearer {channel['accessToken']}"}
    plain = web.client.post(url, data="hello", headers={**auth, "Content-Type": "text/plain"})
    api_error(plain, 415, "unsupported_media_type")
    api_error(web.client.post(url, data="hello", headers=auth), 415, "unsupported_media_type")
    broken = {**auth, "Content-Type": "application/json"}
    api_error(web.client.post(url, data="{", headers=broken), 400, "bad_request")
    api_error(web.client.post(url, data="[" * 4000, headers=broken), 400, "bad_request")
    nan = '{"conversationId": "c", "message": {"locationMessage": {"coordinates": '
    nan += '{"lat": NaN, "long": 1}}}}'
    api_error(web.client.post(url, data=nan, headers=broken), 400, "bad_request")
    api_error(web.client.post(url, data=b"\xff\xfe\xfa", headers=broken), 400, "bad_request")
    latin1 = b'{"conversationId": "c", "message": {"textMessage": {"text": "caf\xe9"}}}'
    invalid = web.client.post(url, data=latin1, headers=broken)
    assert "not valid Unicode" in api_error(
        invalid, 422, "validation_failed", "message.textMessage.text"
    )
    assert web.queued_keys() == []


def _big_body() -> bytes:
    return json.dumps(
        {"conversationId": "c1", "message": {"textMessage": {"text": "x" * 5000}}}
    ).encode()


def test_a_body_over_the_limit_is_413_with_or_without_a_length(
    web: WebApp, channel: dict[str, Any]
) -> None:
    url = f"/v1/channels/webhook/{channel['id']}/messages"
    headers = {
        "Authorization": f"Bearer {channel['accessToken']}",
        "Content-Type": "application/json",
    }
    api_error(web.client.post(url, data=_big_body(), headers=headers), 413, "body_too_large")
    chunked = web.client.post(
        url,
        input_stream=io.BytesIO(_big_body()),
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    api_error(chunked, 413, "body_too_large")
    plain = web.client.post(
        url, data=_big_body(), headers={**headers, "Content-Type": "text/plain"}
    )
    api_error(plain, 413, "body_too_large")
    assert web.queued_keys() == []


def test_a_chunked_body_within_the_limit_is_accepted(web: WebApp, channel: dict[str, Any]) -> None:
    answer = web.client.post(
        f"/v1/channels/webhook/{channel['id']}/messages",
        input_stream=io.BytesIO(json.dumps(wire_fixture("inbound_current.json")).encode()),
        headers={
            "Authorization": f"Bearer {channel['accessToken']}",
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert answer.status_code == 202


def test_wrong_method_and_unknown_route_get_json_errors(
    web: WebApp, channel: dict[str, Any]
) -> None:
    wrong = web.client.get(f"/v1/channels/webhook/{channel['id']}/messages")
    api_error(wrong, 405, "method_not_allowed")
    assert "POST" in wrong.headers["Allow"]
    api_error(web.client.post("/v1/channels/nowhere"), 404, "not_found")


def test_one_pass_of_a_turn_runner_answers_many_conversations(
    web: WebApp, channel: dict[str, Any]
) -> None:
    """A worker takes the conversations whose turn is due in batches; on a Redis Cluster
    their entries on the turn schedule sit in several shards."""
    names = [f"c{n}" for n in range(20)]
    for name in names:
        assert web.send(channel, name, f"hi {name}").status_code == 202
    conversation_keys = [web.conversation_key(channel, name) for name in names]
    assert turns.run_batch(web.redis, web.settings, web.sender, conversation_keys) == 20
    assert web.queued_keys() == []
    assert len(web.sender.deliveries) == 20  # each conversation's reply queue, handed out
