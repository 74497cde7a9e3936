"""Conversations, transcripts, conversation data, agent actions and API tokens over the API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from broker.conversations import conversation_store
from broker.core import ids, keys
from broker.core.locks import Lock
from broker.delivery.records import split_due_member
from tests.conversations import pause
from tests.web_app import ADMIN, WebApp, api_error, web_app


def _token(web: WebApp, bot_id: str) -> dict[str, str]:
    created = web.client.post(
        f"/v1/bots/{bot_id}/api-tokens", json={"description": "agents"}, headers=ADMIN
    )
    assert created.status_code == 201
    return {"Authorization": f"Bearer {created.get_json()['token']}"}


def test_conversations_are_listed_newest_first_per_version(web: WebApp) -> None:
    live = web.channel()
    draft = web.channel(live["botId"], version="DRAFT")
    web.say(live, "alice")
    web.say(live, "bob", "hi", sessionData={"email": "b@example.com"})
    web.say(draft, "carol")
    path = f"/v1/bots/{live['botId']}/conversations"

    listed = web.client.get(path, headers=ADMIN).get_json()

    assert (listed["total"], listed["page"], listed["limit"]) == (2, 1, 50)
    bob, alice = listed["items"]
    assert set(bob) == {
        "sessionId",
        "version",
        "channelId",
        "state",
        "paused",
        "offloadPending",
        "messageCount",
        "lastActivityAt",
    }
    assert (bob["sessionId"], alice["sessionId"]) == ("bob", "alice")
    assert bob["version"] == "LIVE" and bob["channelId"] == live["id"]
    assert bob["state"] == "echo" and bob["paused"] is False and bob["messageCount"] == 2
    assert bob["lastActivityAt"].endswith("Z")
    drafts = web.client.get(path + "?version=DRAFT", headers=ADMIN).get_json()
    assert [s["sessionId"] for s in drafts["items"]] == ["carol"]
    assert (
        web.client.get(path + "?limit=1&page=2", headers=ADMIN).get_json()["items"][0]["sessionId"]
        == "alice"
    )


@pytest.mark.parametrize("filter_value", ["false", "0"])
def test_conversations_not_paused_are_paged_past_the_paused_ones(
    web: WebApp, filter_value: str
) -> None:
    channel = web.channel()
    for name in ["a", "b", "c", "d", "e"]:
        web.say(channel, name)
    for name in ["b", "d"]:
        pause(web.redis, ids.conversation_key(channel["botId"], "LIVE", channel["id"], name))
    path = f"/v1/bots/{channel['botId']}/conversations?paused={filter_value}"

    pages = [
        web.client.get(f"{path}&limit=2&page={page}", headers=ADMIN).get_json()
        for page in (1, 2, 3)
    ]

    assert [[item["sessionId"] for item in page["items"]] for page in pages] == [
        ["e", "c"],
        ["a"],
        [],
    ]
    assert {page["total"] for page in pages} == {3}
    assert all(item["paused"] is False for page in pages for item in page["items"])


def test_a_listing_by_channel_is_exact_or_says_it_stopped_short(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet = web.channel()
    busy = web.channel(quiet["botId"])
    web.say(quiet, "a|b")
    for name in ("x", "y", "z"):
        web.say(busy, name)
    path = f"/v1/bots/{quiet['botId']}/conversations?channelId="

    def listed(channel_id: str) -> Any:
        answer = web.client.get(path + quote(channel_id, safe=""), headers=ADMIN)
        assert answer.status_code == 200
        return answer.get_json()

    mine = listed(quiet["id"])
    assert [i["sessionId"] for i in mine["items"]] == ["a|b"] and "scanLimited" not in mine
    assert listed(f"{quiet['id']}|a")["total"] == 0  # no channel has that id
    monkeypatch.setattr(conversation_store, "SCAN_LIMIT", 2)
    monkeypatch.setattr(conversation_store, "_CHUNK", 2)
    assert listed(quiet["id"]) == {
        "items": [],
        "total": 0,
        "page": 1,
        "limit": 50,
        "scanLimited": True,
    }
    assert (listed(busy["id"])["total"], listed(busy["id"])["scanLimited"]) == (2, True)


def test_the_transcript_and_variables(web: WebApp) -> None:
    channel = web.channel()
    web.say(channel, "bob", "hi", sessionData={"email": "b@example.com"})
    base = f"/v1/bots/{channel['botId']}/conversations/bob"

    transcript = web.client.get(base + "/messages", headers=ADMIN).get_json()
    assert transcript["total"] == 2
    user, bot = transcript["items"]
    assert user["actor"] == "user" and user["message"]["text"] == "hi"
    assert user["message"]["messageType"] == "text"
    assert bot == {
        "actor": "bot",
        "timestamp": bot["timestamp"],
        "message": {"text": "You said: hi"},
    }

    data = web.client.get(base + "/session-data", headers=ADMIN).get_json()
    assert data["sessionId"] == "bob" and data["version"] == "LIVE"
    assert data["sessionData"]["email"] == "b@example.com"
    assert web.client.delete(base + "/session-data?version=LIVE", headers=ADMIN).status_code == 204
    assert web.client.get(base + "/session-data", headers=ADMIN).get_json()["sessionData"] == {}
    listed = web.client.get(f"/v1/bots/{channel['botId']}/conversations", headers=ADMIN).get_json()
    assert listed["items"][0]["state"] == "echo"


@pytest.mark.parametrize(
    "session_id", ["x/y", "/lead", "a//b", "ends/messages", "%2F?#é", "c\nd", "tab\there\r"]
)
def test_a_conversation_id_of_any_text_is_reached_escaped(web: WebApp, session_id: str) -> None:
    """Ids are opaque: one a channel sends with "/" or a line break in it is reached escaped."""
    channel = web.channel()
    web.say(channel, session_id, "hi")
    base = f"/v1/bots/{channel['botId']}/conversations/{quote(session_id, safe='')}"

    transcript = web.client.get(base + "/messages", headers=ADMIN).get_json()
    assert [item["actor"] for item in transcript["items"]] == ["user", "bot"]
    data = web.client.get(base + "/session-data", headers=ADMIN).get_json()
    assert data["sessionId"] == session_id
    acted = web.client.post(
        base + "/actions", json={"sendMessages": [{"text": "an agent"}]}, headers=ADMIN
    )
    assert acted.status_code == 202, acted.get_json()
    assert web.client.delete(base + "/session-data", headers=ADMIN).status_code == 204
    page = web.client.get(
        f"/dashboard/conversations/{channel['botId']}/{quote(session_id, safe='')}", headers=ADMIN
    )
    assert page.status_code == 200 and "an agent" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/conversations?version=BETA",
        "/conversations/bob/messages?version=live",
        "/conversations/bob/session-data?version=x",
    ],
)
def test_a_version_that_is_not_draft_or_live_is_422(web: WebApp, path: str) -> None:
    channel = web.channel()
    web.say(channel, "bob", "hi")
    api_error(
        web.client.get(f"/v1/bots/{channel['botId']}{path}", headers=ADMIN),
        422,
        "validation_failed",
        "version",
    )


def test_unknown_bots_and_conversations_are_404(web: WebApp) -> None:
    channel = web.channel()
    web.say(channel, "bob", "hi")
    bot = channel["botId"]
    get = web.client.get
    api_error(get("/v1/bots/bot_nope/conversations", headers=ADMIN), 404, "not_found")
    api_error(get(f"/v1/bots/{bot}/conversations/nobody/messages", headers=ADMIN), 404, "not_found")
    api_error(
        get(f"/v1/bots/{bot}/conversations/bob/messages?version=DRAFT", headers=ADMIN),
        404,
        "not_found",
    )
    api_error(
        get(f"/v1/bots/{bot}/conversations/nobody/session-data", headers=ADMIN), 404, "not_found"
    )
    api_error(
        web.client.delete(f"/v1/bots/{bot}/conversations/nobody/session-data", headers=ADMIN),
        404,
        "not_found",
    )
    api_error(get(f"/v1/bots/{bot}/conversations", headers={}), 401, "unauthorized")


def test_an_agent_message_is_queued_for_the_channel_webhook(web: WebApp) -> None:
    channel = web.channel()
    web.say(channel, "bob")
    path = f"/v1/bots/{channel['botId']}/conversations/bob/actions?version=LIVE"
    body = {
        "sendMessages": [
            {"text": "Agent here"},
            {"textMessageTemplate": {"textMessages": [{"text": "Two"}]}},
        ]
    }

    answer = web.client.post(path, json=body, headers=_token(web, channel["botId"]))

    assert answer.status_code == 202, answer.get_json()
    assert set(answer.get_json()) == {"botId", "sessionId", "version", "paused", "deliveryIds"}
    assert len(answer.get_json()["deliveryIds"]) == 2
    delivery = web.client.get(
        f"/v1/deliveries/{answer.get_json()['deliveryIds'][1]}", headers=ADMIN
    ).get_json()
    assert delivery["endpointId"] == channel["id"]
    assert delivery["body"]["message"] == {"text": "Two"}
    assert delivery["body"]["messageCounter"] == 3
    conversation_key = ids.conversation_key(channel["botId"], "LIVE", channel["id"], "bob")
    handed = [split_due_member(member)[0] for member in web.sender.deliveries]
    assert f"{conversation_key}|{channel['id']}" in handed


def test_the_admin_token_opens_the_agent_route_too(web: WebApp) -> None:
    channel = web.channel()
    web.say(channel, "bob")
    path = f"/v1/bots/{channel['botId']}/conversations/bob/actions"
    assert (
        web.client.post(path, json={"sendMessages": [{"text": "x"}]}, headers=ADMIN).status_code
        == 202
    )


def test_hand_back_unpauses_and_continues_at_the_state(web: WebApp) -> None:
    channel = web.channel()
    web.say(channel, "bob")
    conversation_key = ids.conversation_key(channel["botId"], "LIVE", channel["id"], "bob")
    pause(web.redis, conversation_key)
    base = f"/v1/bots/{channel['botId']}/conversations"
    assert web.client.get(base, headers=ADMIN).get_json()["items"][0]["paused"] is True

    answer = web.client.post(
        f"{base}/bob/actions",
        json={"resumeBot": True, "goToDialogstate": "no_agent"},
        headers=ADMIN,
    )

    assert answer.status_code == 202
    assert answer.get_json()["paused"] is False
    (delivery_id,) = answer.get_json()["deliveryIds"]
    delivery = web.client.get(f"/v1/deliveries/{delivery_id}", headers=ADMIN).get_json()
    assert delivery["body"]["message"] == {"text": "No agent is available right now."}
    assert web.client.get(base, headers=ADMIN).get_json()["items"][0]["paused"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "sendMessages"),
        ({"resumeBot": False}, "sendMessages"),
        ({"sendMessages": []}, "sendMessages"),
        ({"sendMessages": "hi"}, "sendMessages"),
        ({"sendMessages": [{"text": "ok"}, {"text": 5}]}, "sendMessages[1].text"),
        (
            {"sendMessages": [{"buttonTemplate": {"textMessages": [{"text": "x"}]}}]},
            "sendMessages[0].buttonTemplate.buttons",
        ),
        ({"goToDialogstate": "echo"}, "resumeBot"),
        ({"resumeBot": True, "goToDialogstate": "nowhere"}, "goToDialogstate"),
        ({"resumeBot": True, "goToDialogstate": "human"}, "goToDialogstate"),
        ({"resumeBot": "yes"}, "resumeBot"),
        ({"sendMessages": [{"text": "x"}], "extra": 1}, "extra"),
        (
            {
                "sendMessages": [
                    {
                        "carouselTemplate": {
                            "elements": [{"title": "A", "imageUrl": "data:text/html,x"}]
                        }
                    }
                ]
            },
            "sendMessages[0].carouselTemplate.elements[0].imageUrl",
        ),
        (
            {
                "sendMessages": [
                    {
                        "quickReplyTemplate": {
                            "textMessages": [{"text": "x"}],
                            "quickReplies": [{"title": "A", "payload": "a", "imageUrl": "notaurl"}],
                        }
                    }
                ]
            },
            "sendMessages[0].quickReplyTemplate.quickReplies[0].imageUrl",
        ),
        (
            {"sendMessages": [{"attachment": {"type": "image", "payload": {"url": "tel:123"}}}]},
            "sendMessages[0].attachment.payload.url",
        ),
        (
            {"sendMessages": [{"attachment": {"type": "file", "payload": {"url": "{{link}}"}}}]},
            "sendMessages[0].attachment.payload.url",
        ),
        (
            {
                "sendMessages": [
                    {
                        "attachment": {
                            "type": "template",
                            "payload": {
                                "template_type": "generic",
                                "elements": [{"title": "A", "item_url": "javascript:alert(1)"}],
                            },
                        }
                    }
                ]
            },
            "sendMessages[0].attachment.payload.elements[0].item_url",
        ),
        (
            {
                "sendMessages": [
                    {
                        "text": "x",
                        "quick_replies": [{"title": "A", "payload": "a", "image_url": "notaurl"}],
                    }
                ]
            },
            "sendMessages[0].quick_replies[0].image_url",
        ),
    ],
)
def test_a_bad_action_is_422_naming_the_field(
    web: WebApp, body: dict[str, Any], field: str
) -> None:
    channel = web.channel()
    web.say(channel, "bob")
    answer = web.client.post(
        f"/v1/bots/{channel['botId']}/conversations/bob/actions", json=body, headers=ADMIN
    )
    api_error(answer, 422, "validation_failed", field)


def test_agent_route_errors(web: WebApp) -> None:
    channel = web.channel()
    other = web.bot()
    web.say(channel, "bob")
    path = f"/v1/bots/{channel['botId']}/conversations/bob/actions"
    body = {"sendMessages": [{"text": "x"}]}
    post = web.client.post
    api_error(post(path, json=body), 401, "unauthorized")
    api_error(post(path, json=body, headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    api_error(post(path, json=body, headers=_token(web, other["id"])), 403, "forbidden")
    api_error(
        post(path + "?version=BETA", json=body, headers=ADMIN), 422, "validation_failed", "version"
    )
    api_error(post(path + "?version=DRAFT", json=body, headers=ADMIN), 404, "not_found")
    api_error(post(path.replace("/bob/", "/nobody/"), json=body, headers=ADMIN), 404, "not_found")
    api_error(
        post(path, data="{", content_type="application/json", headers=ADMIN), 400, "bad_request"
    )
    api_error(
        post(path, data="x", content_type="text/plain", headers=ADMIN),
        415,
        "unsupported_media_type",
    )
    api_error(web.client.get(path, headers=ADMIN), 405, "method_not_allowed")


def test_api_tokens_are_shown_once_stored_hashed_listed_and_revoked(web: WebApp) -> None:
    bot = web.bot()
    path = f"/v1/bots/{bot['id']}/api-tokens"
    created = web.client.post(path, headers=ADMIN)
    assert created.status_code == 201
    token = created.get_json()["token"]
    assert set(created.get_json()) == {"id", "botId", "description", "createdAt", "token"}
    assert not any(token in str(v) for v in web.redis.hgetall(keys.API_TOKENS).values())
    assert token not in web.redis.hgetall(keys.API_TOKENS)

    listed = web.client.get(path, headers=ADMIN).get_json()
    assert listed["total"] == 1 and "token" not in listed["items"][0]
    bearer = {"Authorization": f"Bearer {token}"}
    api_error(web.client.get("/v1/bots", headers=bearer), 403, "forbidden")
    api_error(web.client.post(path, headers=bearer), 403, "forbidden")

    assert web.client.delete(f"{path}/{created.get_json()['id']}", headers=ADMIN).status_code == 204
    api_error(
        web.client.delete(f"{path}/{created.get_json()['id']}", headers=ADMIN), 404, "not_found"
    )
    api_error(web.client.get("/v1/bots", headers=bearer), 401, "unauthorized")
    api_error(web.client.post("/v1/bots/bot_nope/api-tokens", headers=ADMIN), 404, "not_found")
    for description in (5, "two\nlines", "\x1b[2J"):
        api_error(
            web.client.post(path, json={"description": description}, headers=ADMIN),
            422,
            "validation_failed",
            "description",
        )


def test_deleting_a_bot_revokes_its_api_tokens(web: WebApp) -> None:
    bot = web.bot()
    bearer = _token(web, bot["id"])
    assert web.client.delete(f"/v1/bots/{bot['id']}", headers=ADMIN).status_code == 204
    assert web.redis.hlen(keys.API_TOKENS) == 0
    api_error(web.client.get("/v1/bots", headers=bearer), 401, "unauthorized")


def test_a_conversation_held_by_a_bot_turn_is_409(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = web.channel()
    web.say(channel, "bob", "hi")
    monkeypatch.setattr(conversation_store, "CONVERSATION_LOCK_WAIT", 0.05)
    conversation_key = ids.conversation_key(channel["botId"], "LIVE", channel["id"], "bob")
    assert Lock(web.redis, keys.conversation_lock(conversation_key), 10).acquire()
    base = f"/v1/bots/{channel['botId']}/conversations/bob"
    api_error(web.client.delete(base + "/session-data", headers=ADMIN), 409, "conflict")
    answer = web.client.post(
        base + "/actions", json={"sendMessages": [{"text": "x"}]}, headers=ADMIN
    )
    api_error(answer, 409, "conflict")


def test_an_action_over_the_body_limit_is_413() -> None:
    with web_app(max_body_bytes=2048) as web:
        channel = web.channel()
        web.say(channel, "bob")
        answer = web.client.post(
            f"/v1/bots/{channel['botId']}/conversations/bob/actions",
            json={"sendMessages": [{"text": "x" * 3000}]},
            headers=ADMIN,
        )
        api_error(answer, 413, "body_too_large")
