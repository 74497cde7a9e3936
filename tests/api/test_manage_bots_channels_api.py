"""Bots and Webhook channels over the API (docs/wire-contract.md §6): shapes, statuses and error
fields."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from broker.core import clock, ids, keys
from broker.delivery import endpoint_store
from tests.web_app import ADMIN, WebApp, api_error, web_app

CHANNEL_FIELDS = {
    "id",
    "accessToken",
    "verifyToken",
    "signingSecret",
    "webhookUrl",
    "messagesUrl",
    "version",
}


@pytest.fixture
def web() -> Iterator[WebApp]:
    with web_app(max_body_bytes=4096) as made:
        yield made


def test_bot_lifecycle(web: WebApp) -> None:
    bot = web.bot()
    assert {"id", "name", "createdAt", "updatedAt", "publishedAt", "draft", "live"} <= set(bot)
    new = {"startState": "a", "states": [{"id": "a", "messages": [{"text": "new"}]}]}
    draft = web.client.put(f"/v1/bots/{bot['id']}/draft", json={"definition": new}, headers=ADMIN)
    assert draft.status_code == 200
    assert draft.get_json()["draft"]["states"][0]["messages"] == [{"text": "new"}]
    assert draft.get_json()["live"] != draft.get_json()["draft"]
    published = web.client.post(f"/v1/bots/{bot['id']}/publish", headers=ADMIN)
    assert published.get_json()["live"] == draft.get_json()["draft"]
    listed = web.client.get("/v1/bots?limit=1", headers=ADMIN).get_json()
    assert listed["total"] == 1 and listed["page"] == 1 and listed["limit"] == 1
    assert [b["id"] for b in listed["items"]] == [bot["id"]]
    assert web.client.delete(f"/v1/bots/{bot['id']}", headers=ADMIN).status_code == 204
    api_error(web.client.get(f"/v1/bots/{bot['id']}", headers=ADMIN), 404, "not_found")


def test_a_faulty_draft_names_the_path(web: WebApp) -> None:
    bot = web.bot()
    bad = {"startState": "a", "states": [{"id": "a", "next": "nowhere"}]}
    answer = web.client.put(f"/v1/bots/{bot['id']}/draft", json={"definition": bad}, headers=ADMIN)
    api_error(answer, 422, "validation_failed", "definition.states[0].next")


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, 401, "unauthorized"),
        ({"Authorization": "Basic abc"}, 401, "unauthorized"),
    ],
)
def test_management_routes_need_the_admin_token(
    web: WebApp, headers: dict[str, str], status: int, code: str
) -> None:
    api_error(web.client.get("/v1/bots", headers=headers), status, code)


def test_bad_bodies_get_400_413_415_422(web: WebApp) -> None:
    post = web.client.post
    api_error(
        post("/v1/bots", data="{", content_type="application/json", headers=ADMIN),
        400,
        "bad_request",
    )
    api_error(
        post("/v1/bots", data="name=x", content_type="text/plain", headers=ADMIN),
        415,
        "unsupported_media_type",
    )
    big = {"name": "x", "definition": {"template": "echo", "pad": "x" * 5000}}
    api_error(post("/v1/bots", json=big, headers=ADMIN), 413, "body_too_large")
    api_error(post("/v1/bots", json=[1], headers=ADMIN), 422, "validation_failed", "body")
    api_error(
        post("/v1/bots", json={"definition": {"template": "echo"}}, headers=ADMIN),
        422,
        "validation_failed",
        "name",
    )
    api_error(
        post("/v1/bots", json={"name": "x", "definition": {"template": "nope"}}, headers=ADMIN),
        422,
        "validation_failed",
        "definition.template",
    )


def test_a_wrong_method_gets_405(web: WebApp) -> None:
    api_error(web.client.put("/v1/bots", json={}, headers=ADMIN), 405, "method_not_allowed")


def test_creating_a_channel_answers_its_secrets_once(web: WebApp) -> None:
    bot = web.bot()
    answer = web.client.post(
        f"/v1/bots/{bot['id']}/channels/webhook",
        json={"webhookUrl": "http://127.0.0.1:9/hook"},
        headers=ADMIN,
    )
    assert answer.status_code == 201
    created = answer.get_json()
    assert set(created) >= CHANNEL_FIELDS
    assert created["version"] == "LIVE"
    assert created["signingSecret"].startswith("whsec_")
    assert created["verifyToken"]
    assert created["messagesUrl"].endswith(f"/v1/channels/webhook/{created['id']}/messages")
    read = web.client.get(
        f"/v1/bots/{bot['id']}/channels/webhook/{created['id']}", headers=ADMIN
    ).get_json()
    assert "accessToken" not in read
    assert read["signingSecret"] == created["signingSecret"]
    stored = web.redis.hgetall(keys.channel(created["id"]))
    assert created["accessToken"] not in stored.values()


def test_a_channel_keeps_the_verify_token_and_version_given(web: WebApp) -> None:
    created = web.channel(verifyToken="8wMsLZkdDPT64nqh", version="DRAFT")
    assert created["verifyToken"] == "8wMsLZkdDPT64nqh"
    assert created["version"] == "DRAFT"


def test_a_verify_token_names_one_channel_of_its_bot(web: WebApp) -> None:
    """On the legacy route the verify token is what tells a bot's channels apart."""
    first = web.channel(verifyToken="8wMsLZkdDPT64nqh")
    bot_id = first["botId"]
    url = f"/v1/bots/{bot_id}/channels/webhook"
    taken = {"webhookUrl": "http://127.0.0.1:9/hook", "verifyToken": "8wMsLZkdDPT64nqh"}
    refused = web.client.post(url, json=taken, headers=ADMIN)
    assert first["id"] in api_error(refused, 409, "conflict", "verifyToken")
    second = web.channel(bot_id, verifyToken="another-token-0123")
    changed = web.client.patch(
        f"{url}/{second['id']}", json={"verifyToken": "8wMsLZkdDPT64nqh"}, headers=ADMIN
    )
    api_error(changed, 409, "conflict", "verifyToken")
    # Its own token again, and another bot's channel with the same token, are fine.
    kept = {"verifyToken": "another-token-0123"}
    assert web.client.patch(f"{url}/{second['id']}", json=kept, headers=ADMIN).status_code == 200
    assert web.channel(verifyToken="8wMsLZkdDPT64nqh")["botId"] != bot_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "webhookUrl"),
        ({"webhookUrl": "http://10.0.0.5/hook"}, "webhookUrl"),
        ({"webhookUrl": "ftp://example.com/hook"}, "webhookUrl"),
        ({"webhookUrl": "http://a..b/hook"}, "webhookUrl"),
        ({"webhookUrl": "http://127.0.0.1:9/hook", "version": "BETA"}, "version"),
        ({"webhookUrl": "http://127.0.0.1:9/hook", "verifyToken": ""}, "verifyToken"),
        ({"webhookUrl": "http://127.0.0.1:9/hook", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_channel_is_refused_naming_the_field(
    web: WebApp, body: dict[str, str], field: str
) -> None:
    bot = web.bot()
    answer = web.client.post(f"/v1/bots/{bot['id']}/channels/webhook", json=body, headers=ADMIN)
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == field


def test_a_channel_of_an_unknown_bot_is_404(web: WebApp) -> None:
    answer = web.client.post(
        "/v1/bots/bot_nope/channels/webhook",
        json={"webhookUrl": "http://127.0.0.1:9/h"},
        headers=ADMIN,
    )
    api_error(answer, 404, "not_found")


def test_patching_a_channel(web: WebApp) -> None:
    channel = web.channel()
    path = f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}"
    change = {
        "webhookUrl": "http://127.0.0.1:10/other",
        "verifyToken": "new-verify-token",
        "version": "DRAFT",
        "retrySchedule": [0, 1, 2],
        "connectTimeout": 1.5,
        "totalTimeout": 4,
    }
    answer = web.client.patch(path, json=change, headers=ADMIN)
    assert answer.status_code == 200
    for name, value in change.items():
        assert answer.get_json()[name] == value
    assert (
        web.client.get(path, headers=ADMIN).get_json()["webhookUrl"] == "http://127.0.0.1:10/other"
    )
    api_error(
        web.client.patch(path, json={"webhookUrl": "http://192.168.1.1/"}, headers=ADMIN),
        422,
        "unsafe_url",
        "webhookUrl",
    )
    for schedule in ([], [5, 30]):
        api_error(
            web.client.patch(path, json={"retrySchedule": schedule}, headers=ADMIN),
            422,
            "validation_failed",
            "retrySchedule",
        )
    api_error(
        web.client.patch(path, json={"totalTimeout": 0}, headers=ADMIN),
        422,
        "validation_failed",
        "totalTimeout",
    )
    api_error(
        web.client.patch(path, json={"connectTimeout": 20, "totalTimeout": 5}, headers=ADMIN),
        422,
        "validation_failed",
        "connectTimeout",
    )
    api_error(
        web.client.patch(path, json={"totalTimeout": 1}, headers=ADMIN),  # its connect is 1.5 s
        422,
        "validation_failed",
        "totalTimeout",
    )


def test_a_connect_timeout_longer_than_the_default_total_is_refused() -> None:
    """The total timeout limits the whole request, connecting included: a connect timeout
    longer than the total that applies, the default one here, would never apply."""
    with web_app(connect_timeout=3.0, total_timeout=3.0) as web:
        channel = web.channel()
        path = f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}"
        message = api_error(
            web.client.patch(path, json={"connectTimeout": 5}, headers=ADMIN),
            422,
            "validation_failed",
            "connectTimeout",
        )
        assert "longer than totalTimeout (3 s, the default)" in message
        assert "never apply" in message
        shown = web.client.get(path, headers=ADMIN).get_json()
        assert (shown["connectTimeout"], shown["totalTimeout"]) == (3, 3)
        assert endpoint_store.load(web.redis, channel["id"]).connect_timeout == 0.0


def test_a_default_connect_timeout_is_shown_cut_short_by_a_shorter_total() -> None:
    """A channel's own total below the default connect timeout is taken, and the connect
    timeout shown is the one that applies: the total."""
    with web_app(connect_timeout=3.0, total_timeout=10.0) as web:
        channel = web.channel()
        path = f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}"
        answer = web.client.patch(path, json={"totalTimeout": 2}, headers=ADMIN)
        assert answer.status_code == 200, answer.get_json()
        assert (answer.get_json()["connectTimeout"], answer.get_json()["totalTimeout"]) == (2, 2)
        endpoint = endpoint_store.load(web.redis, channel["id"])
        assert endpoint.timeouts(web.settings) == (2.0, 2.0)


def test_rotating_the_secret_keeps_the_old_one_signing(web: WebApp) -> None:
    channel = web.channel()
    path = f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}/rotate-secret"
    rotated = web.client.post(path, headers=ADMIN)
    assert rotated.status_code == 200
    assert rotated.get_json()["signingSecret"].startswith("whsec_")
    assert rotated.get_json()["signingSecret"] != channel["signingSecret"]
    again = web.client.post(path, headers=ADMIN).get_json()["signingSecret"]
    endpoint = endpoint_store.load(web.redis, channel["id"])
    assert endpoint.signing_secrets(clock.now()) == [
        again,
        rotated.get_json()["signingSecret"],
        channel["signingSecret"],
    ]
    assert endpoint.signing_secrets(clock.now() + 25 * 3600) == [again]


def test_another_bots_channel_is_404_on_every_route(web: WebApp) -> None:
    channel = web.channel()
    other = web.bot()
    path = f"/v1/bots/{other['id']}/channels/webhook/{channel['id']}"
    api_error(web.client.get(path, headers=ADMIN), 404, "not_found")
    api_error(web.client.patch(path, json={"version": "DRAFT"}, headers=ADMIN), 404, "not_found")
    api_error(web.client.post(path + "/rotate-secret", headers=ADMIN), 404, "not_found")
    api_error(web.client.delete(path, headers=ADMIN), 404, "not_found")
    assert (
        web.client.delete(
            f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}", headers=ADMIN
        ).status_code
        == 204
    )
    api_error(
        web.client.get(
            f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}", headers=ADMIN
        ),
        404,
        "not_found",
    )


def test_channel_list_is_paged(web: WebApp) -> None:
    bot = web.bot()
    made = [web.channel(bot["id"])["id"] for _ in range(3)]
    path = f"/v1/bots/{bot['id']}/channels/webhook"
    first = web.client.get(path + "?limit=2", headers=ADMIN).get_json()
    second = web.client.get(path + "?limit=2&page=2", headers=ADMIN).get_json()
    assert (first["total"], first["page"], first["limit"]) == (3, 1, 2)
    assert [c["id"] for c in first["items"] + second["items"]] == made
    assert all("accessToken" not in c for c in first["items"])
    api_error(web.client.get(path + "?limit=501", headers=ADMIN), 422, "validation_failed", "limit")
    api_error(web.client.get(path + "?page=0", headers=ADMIN), 422, "validation_failed", "page")
    api_error(web.client.get("/v1/bots/bot_nope/channels/webhook", headers=ADMIN), 404, "not_found")


def test_deleting_a_bot_removes_its_channels_and_endpoints(web: WebApp) -> None:
    channel = web.channel()
    assert web.client.delete(f"/v1/bots/{channel['botId']}", headers=ADMIN).status_code == 204
    assert not web.redis.exists(keys.channel(channel["id"]))
    api_error(web.client.get(f"/v1/endpoints/{channel['id']}", headers=ADMIN), 404, "not_found")


def test_removing_a_channel_removes_its_conversations_only(web: WebApp) -> None:
    gone = web.channel()
    kept = web.channel(gone["botId"])
    for channel in (gone, kept):
        web.say(channel, "ann", "hi")
        web.say(channel, "b*[o]b?", "hi")
    conversations = f"/v1/bots/{gone['botId']}/conversations"

    answer = web.client.delete(
        f"/v1/bots/{gone['botId']}/channels/webhook/{gone['id']}", headers=ADMIN
    )

    assert answer.status_code == 204
    listed = web.client.get(conversations, headers=ADMIN).get_json()["items"]
    assert {(item["channelId"], item["sessionId"]) for item in listed} == {
        (kept["id"], "ann"),
        (kept["id"], "b*[o]b?"),
    }
    gone_keys = {
        ids.conversation_key(gone["botId"], "LIVE", gone["id"], name) for name in ("ann", "b*[o]b?")
    }
    left = list(web.redis.scan_iter("sb:{c:*"))
    assert left and not [key for key in left if any(k in key for k in gone_keys)]


@pytest.mark.parametrize("name", [" ", "\u3000 "])
def test_a_blank_bot_name_is_422(web: WebApp, name: str) -> None:
    answer = web.client.post(
        "/v1/bots", json={"name": name, "definition": {"template": "echo"}}, headers=ADMIN
    )
    assert api_error(answer, 422, "validation_failed", "name") == "a name is more than white space"


@pytest.mark.parametrize("name", ["\u0000", "a\nb", "tab\there", "a\u0085b", "a\u2028b"])
def test_a_bot_name_with_a_control_character_is_422(web: WebApp, name: str) -> None:
    answer = web.client.post(
        "/v1/bots", json={"name": name, "definition": {"template": "echo"}}, headers=ADMIN
    )
    message = api_error(answer, 422, "validation_failed", "name")
    assert message == "one line of text: no control characters or line breaks"
    named = web.client.post(
        "/v1/bots", json={"name": "Café bot — 2", "definition": {"template": "echo"}}, headers=ADMIN
    )
    assert named.status_code == 201
