"""What the API refuses of variables and templates: a variable name with control or formatting
characters or empty parts (`sessionData`, `sessionDataToSet`, a legacy press's `params`, an
agent's `sessionDataToSet`) is 422 naming the field; a definition whose text holds a `{{`
that is no placeholder is 422 naming the path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web_app import ADMIN, WebApp

ODD_KEYS = ["a\u0000b", "\u202e", ".", "a..b", "a.", " ", "zero\u200bwidth"]


def _queued(web: WebApp) -> int:
    return sum(web.redis.llen(inbox) for inbox in web.queued_keys())


@pytest.mark.parametrize("key", ODD_KEYS)
def test_an_odd_session_data_key_is_422_and_not_queued(web: WebApp, key: str) -> None:
    channel = web.channel()
    body = {"conversationId": "u1", "message": {"introMessage": {}}, "sessionData": {key: 1}}
    answer = web.post_message(channel, body)
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"]["field"] == "sessionData"
    assert _queued(web) == 0


@pytest.mark.parametrize("key", ODD_KEYS)
def test_an_odd_session_data_to_set_key_is_422_naming_it(web: WebApp, key: str) -> None:
    channel = web.channel()
    press = {"title": "Go", "nextDialogstateId": "s", "sessionDataToSet": [{"key": key}]}
    answer = web.post_message(
        channel, {"conversationId": "u1", "message": {"postbackMessage": press}}
    )
    assert answer.status_code == 422, answer.get_json()
    field = "message.postbackMessage.sessionDataToSet[0].key"
    assert answer.get_json()["error"]["field"] == field
    assert _queued(web) == 0


def test_plain_and_dotted_keys_are_taken(web: WebApp) -> None:
    channel = web.channel()
    body = {
        "conversationId": "u1",
        "message": {"introMessage": {}},
        "sessionData": {"email": "a@b.c", "address.zipCode": "2000", "prénom": "Zoë"},
    }
    assert web.post_message(channel, body).status_code == 202


def test_an_odd_key_in_a_legacy_press_is_422(web: WebApp) -> None:
    channel = web.channel()
    text = '{"nextDialogstateId": "s", "params": [{"key": "\\u202e", "value": 1}]}'
    answer = web.client.post(
        f"/api/webhookMessage/{channel['botId']}",
        json={"text": text, "sender": {"id": "u1"}, "verifyToken": channel["verifyToken"]},
    )
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == "text"


def _saying(text: str) -> dict[str, Any]:
    return {"version": 2, "startState": "a", "states": {"a": {"say": [text]}}}


@pytest.mark.parametrize("text", ["Hi {{name", "{{ name | upper }}", "{{a b}}", "{{}} {{x}}"])
def test_a_definition_with_a_broken_placeholder_is_422_naming_it(web: WebApp, text: str) -> None:
    answer = web.client.post(
        "/v1/bots", json={"name": "b", "definition": _saying(text)}, headers=ADMIN
    )
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == "definition.states.a.say[0]"


@pytest.mark.parametrize(
    ("state", "field"),
    [
        ({"type": "set", "set": {"x": "{{y"}}, "definition.states.a.set.x"),
        (
            {"type": "api", "request": {"url": "https://k.example/{{id", "method": "GET"}},
            "definition.states.a.request.url",
        ),
        (
            {"say": [{"text": "t", "quick_replies": [{"title": "{{a b}}", "payload": "p"}]}]},
            "definition.states.a.say[0].quick_replies[0].title",
        ),
    ],
)
def test_a_broken_placeholder_anywhere_filled_in_is_422(
    web: WebApp, state: dict[str, Any], field: str
) -> None:
    extra = {"next": "a"} if state.get("type") == "api" else {}
    definition = {"version": 2, "startState": "a", "states": {"a": {**state, **extra}}}
    answer = web.client.post(
        "/v1/bots", json={"name": "b", "definition": definition}, headers=ADMIN
    )
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"]["field"] == field


def test_placeholders_and_regexes_with_braces_are_taken(web: WebApp) -> None:
    definition = {
        "version": 2,
        "startState": "a",
        "states": {
            "a": {"say": ["Hi {{ user.firstName }}, {{order-id}} }} {x}"], "next": "b"},
            "b": {
                "type": "input",
                "variable": "v",
                "expect": "text",
                "pattern": "^a{{2}}$",
                "next": "a",
            },
        },
    }
    answer = web.client.post(
        "/v1/bots", json={"name": "b", "definition": definition}, headers=ADMIN
    )
    assert answer.status_code == 201, answer.get_json()
