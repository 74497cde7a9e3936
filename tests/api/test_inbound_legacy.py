"""The legacy Webhook message API (docs/wire-contract.md §1b), in-process on a real Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.web_app import WebApp, api_error
from tests.wire_fixtures import wire_fixture

pytestmark = pytest.mark.usefixtures("served_by")


def spec_example(channel: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = wire_fixture("inbound_legacy.json")
    return {**body, "verifyToken": channel["verifyToken"], **changes}


def test_the_spec_example_answers_event_received_and_is_queued(web: WebApp) -> None:
    channel = web.channel(verifyToken="8wMsLZkdDPT64nqh")
    answer = web.client.post(f"/api/webhookMessage/{channel['botId']}", json=spec_example(channel))
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    assert answer.get_data(as_text=True) == "EVENT_RECEIVED"
    [queued] = web.inbox(channel, "a7355930-fa92-11e7-8308-2f056e75d1ee")
    assert queued["kind"] == "text" and queued["text"] == "hi"
    assert queued["sessionData"] == {"locale": "fr"}
    assert queued["channelId"] == channel["id"]


def test_the_verify_token_picks_the_channel_among_several(web: WebApp) -> None:
    first = web.channel(verifyToken="verify-token-one")
    second = web.channel(
        first["botId"], verifyToken="verify-token-two", webhookUrl="http://127.0.0.1:9/b"
    )
    answer = web.client.post(
        f"/api/webhookMessage/{first['botId']}",
        json={"text": "hi", "sender": {"id": "s1"}, "verifyToken": "verify-token-two"},
    )
    assert answer.status_code == 200
    [queued] = web.inbox(second, "s1")
    assert queued["channelId"] == second["id"]


@pytest.mark.parametrize("token", [None, "", "wrong", "token-one "])
def test_a_missing_or_wrong_verify_token_is_401_and_nothing_is_queued(
    web: WebApp, token: str | None
) -> None:
    channel = web.channel(verifyToken="verify-token-one")
    body: dict[str, Any] = {"text": "hi", "sender": {"id": "s1"}}
    if token is not None:
        body["verifyToken"] = token
    answer = web.client.post(f"/api/webhookMessage/{channel['botId']}", json=body)
    api_error(answer, 401, "unauthorized", "verifyToken")
    assert web.queued_keys() == []


def test_an_unknown_bot_is_404(web: WebApp) -> None:
    answer = web.client.post(
        "/api/webhookMessage/bot_nope",
        json={"text": "hi", "sender": {"id": "s"}, "verifyToken": "t"},
    )
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sender": {"id": "s1"}}, "text"),
        ({"text": "hi"}, "sender"),
        ({"text": "hi", "sender": {}}, "sender.id"),
        ({"text": 5, "sender": {"id": "s1"}}, "text"),
        ({"text": "hi", "sender": {"id": "s1"}, "locale": ""}, "locale"),
    ],
)
def test_an_invalid_body_is_422(web: WebApp, body: dict[str, Any], field: str) -> None:
    channel = web.channel()
    answer = web.client.post(
        f"/api/webhookMessage/{channel['botId']}",
        json={**body, "verifyToken": channel["verifyToken"]},
    )
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == field
    assert web.queued_keys() == []


def test_a_body_that_is_not_json_is_415(web: WebApp) -> None:
    channel = web.channel()
    answer = web.client.post(f"/api/webhookMessage/{channel['botId']}", data="text=hi")
    assert answer.status_code == 415


def test_a_button_press_as_json_text_becomes_a_postback(web: WebApp) -> None:
    channel = web.channel()
    pressed = {
        "params": [{"key": "size", "value": "large"}],
        "nextDialogstateId": "pick-size",
        "type": "postback",
        "caption": "Large",
    }
    answer = web.client.post(
        f"/api/webhookMessage/{channel['botId']}",
        json=spec_example(channel, text=json.dumps(pressed)),
    )
    assert answer.status_code == 200
    [queued] = web.inbox(channel, "a7355930-fa92-11e7-8308-2f056e75d1ee")
    assert queued["kind"] == "postback"
    assert queued["title"] == "Large"
    assert queued["nextDialogstateId"] == "pick-size"
    assert queued["sessionDataToSet"] == [{"key": "size", "value": "large"}]


def test_the_idempotency_key_header_also_works_on_the_legacy_route(web: WebApp) -> None:
    channel = web.channel()
    for _ in range(2):
        answer = web.client.post(
            f"/api/webhookMessage/{channel['botId']}",
            json={"text": "hi", "sender": {"id": "s1"}, "verifyToken": channel["verifyToken"]},
            headers={"Idempotency-Key": "k1"},
        )
        assert answer.status_code == 200
    assert len(web.inbox(channel, "s1")) == 1


@pytest.mark.parametrize(
    "text",
    [
        '{"x":NaN}',
        '{"x":"\\udc00"}',
        '{"x": ' + "[" * 150 + "]" * 150 + "}",
        '{"nextDialogstateId": "s", "x": ' + "[" * 3000 + "]" * 3000 + "}",
        "sb2.hello.world",
        "sb1.eyJnIjoiczMiLCJwIjpbXX0",
    ],
)
def test_text_that_is_no_button_press_is_the_users_words(web: WebApp, text: str) -> None:
    channel = web.channel()
    answer = web.client.post(
        f"/api/webhookMessage/{channel['botId']}",
        json={"text": text, "sender": {"id": "s1"}, "verifyToken": channel["verifyToken"]},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    [queued] = web.inbox(channel, "s1")
    assert (queued["kind"], queued["text"]) == ("text", text)
