"""Hardening, on the in-process app: bad credentials and bad text are 4xx, never 500; Redis
that cannot serve is 503; conversations are per channel; sessionData limits and bot
removal; failed authentications are throttled and tokens have a length; admin tokens are
listed and revoked; dead letters of turns through the API."""

from __future__ import annotations

import errno
import ipaddress
import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from broker.auth import admin_tokens
from broker.channels import channel_store
from broker.conversations import ingress, turns
from broker.core import keys
from broker.core.connection import Redis
from broker.core.errors import ConfigError
from broker.core.lean_redis import LeanRedis
from switchboard.embedded_redis import free_port
from tests.conversations import park_head
from tests.fakes import RecordingSender
from tests.web_app import ADMIN, WebApp, api_error, web_app
from web import create_app
from web.services import Services

pytestmark = pytest.mark.usefixtures("served_by")


def _queued(web: WebApp) -> int:
    return sum(web.redis.llen(inbox) for inbox in web.queued_keys())


@pytest.mark.parametrize("token", ["é", "tök€n", "a\u00ffb", "x" * 5000])
def test_a_non_ascii_or_huge_bearer_token_is_401_everywhere(web: WebApp, token: str) -> None:
    channel = web.channel()
    bearer = {"Authorization": f"Bearer {token}"}
    for answer in (
        web.client.get("/v1/bots", headers=bearer),
        web.client.get("/v1/endpoints", headers=bearer),
        web.client.post(
            f"/v1/bots/{channel['botId']}/conversations/u1/actions",
            json={"resumeBot": True},
            headers=bearer,
        ),
        web.client.post(
            f"/v1/channels/webhook/{channel['id']}/messages",
            json={"conversationId": "u1", "message": {"introMessage": {}}},
            headers=bearer,
        ),
    ):
        api_error(answer, 401, "unauthorized")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "conversationId": "u1",
                "message": {"introMessage": {}},
                "sessionData": {"k": "\udc00"},
            },
            "sessionData.k",
        ),
        ({"conversationId": "u\ud800", "message": {"introMessage": {}}}, "conversationId"),
        (
            {"conversationId": "u1", "message": {"textMessage": {"text": "a\udfffb"}}},
            "message.textMessage.text",
        ),
        (
            {"conversationId": "u1", "message": {"introMessage": {}}, "sessionData": {"\udc00": 1}},
            "sessionData.\ufffd",
        ),
        (
            {
                "conversationId": "u1",
                "message": {"introMessage": {}},
                "sessionData": {"deep": [[{"x": ["\udc00"]}]]},
            },
            "sessionData.deep[0][0].x[0]",
        ),
    ],
)
def test_text_that_is_not_valid_unicode_is_422_naming_the_field_and_not_queued(
    web: WebApp, body: dict[str, Any], field: str
) -> None:
    channel = web.channel()
    answer = web.post_message(channel, body)
    api_error(answer, 422, "validation_failed", field)
    assert _queued(web) == 0 and web.sender.turns == []


def test_lone_surrogates_are_422_on_the_legacy_and_management_routes(web: WebApp) -> None:
    channel = web.channel()
    legacy = web.client.post(
        f"/api/webhookMessage/{channel['botId']}",
        json={"text": "\udc00", "sender": {"id": "s"}, "verifyToken": channel["verifyToken"]},
    )
    api_error(legacy, 422, "validation_failed", "text")
    bot = web.client.post(
        "/v1/bots", json={"name": "b\udc00", "definition": {"template": "echo"}}, headers=ADMIN
    )
    api_error(bot, 422, "validation_failed", "name")
    assert _queued(web) == 0


def _raw(web: WebApp, path: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return web.client.post(
        path, data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )


@pytest.mark.parametrize(
    ("sent", "status", "words"),
    [
        (b'{"big": 1e999}', 400, "out of range"),
        (b'{"big": -1E400}', 400, "out of range"),
        (b'{"deep": ' + b"[" * 100 + b"]" * 100 + b"}", 400, "nested too deeply"),
    ],
)
def test_numbers_out_of_range_and_deep_nesting_are_refused_everywhere(
    web: WebApp, sent: bytes, status: int, words: str
) -> None:
    """Read, `1e999` would be infinity, which goes out again as `Infinity`: not JSON."""
    channel = web.channel()
    web.say(channel, "u", "hi")
    message = b'{"conversationId": "u", "message": {"textMessage": {"text": "x"}}, '
    answer = _raw(
        web,
        f"/v1/channels/webhook/{channel['id']}/messages",
        message + b'"sessionData": ' + sent + b"}",
        {"Authorization": f"Bearer {channel['accessToken']}"},
    )
    api_error(answer, status, "bad_request")
    assert words in answer.get_json()["error"]["message"]
    event = b'{"sendMessages": [{"type": "event", "name": "e", "data": ' + sent + b"}]}"
    acted = _raw(web, f"/v1/bots/{channel['botId']}/conversations/u/actions", event, dict(ADMIN))
    api_error(acted, status, "bad_request")
    assert _queued(web) == 0


def test_a_body_that_is_not_utf8_is_400(web: WebApp) -> None:
    channel = web.channel()
    body = json.dumps({"conversationId": "u", "message": {"textMessage": {"text": "x"}}})
    answer = _raw(
        web,
        f"/v1/channels/webhook/{channel['id']}/messages",
        body.encode("utf-16"),
        {"Authorization": f"Bearer {channel['accessToken']}"},
    )
    api_error(answer, 400, "bad_request")
    with_mark = _raw(
        web,
        f"/v1/channels/webhook/{channel['id']}/messages",
        body.encode("utf-8-sig"),
        {"Authorization": f"Bearer {channel['accessToken']}"},
    )
    assert with_mark.status_code == 202


@pytest.mark.parametrize(
    "pressed",
    [
        '{"nextDialogstateId": "s", "params": [{"key": "\\udc00", "value": 1}]}',
        '{"nextDialogstateId": "s", "params": [{"key": "k", "value": 1e999}]}',
        '{"nextDialogstateId": "s", "params": [{"key": "k", "value": NaN}]}',
        '{"nextDialogstateId": "s", "params": [{"key": "k", "value": '
        + "[" * 150
        + "]" * 150
        + "}]}",
    ],
)
def test_a_legacy_button_press_that_json_cannot_carry_is_422(web: WebApp, pressed: str) -> None:
    channel = web.channel()
    legacy = web.client.post(
        f"/api/webhookMessage/{channel['botId']}",
        json={"text": pressed, "sender": {"id": "s"}, "verifyToken": channel["verifyToken"]},
    )
    api_error(legacy, 422, "validation_failed", "text")
    assert _queued(web) == 0


def _unreachable_app() -> Iterator[WebApp]:
    with web_app() as web:
        port = free_port()
        # No retries: redis-py's own (about 4 s in all) would only slow the test down.
        dead: Redis = redis.Redis(port=port, decode_responses=True, retry=Retry(NoBackoff(), 0))
        app = create_app(Services(web.settings, dead, RecordingSender()))
        yield WebApp(app, app.test_client(), dead, RecordingSender(), web.settings)


@pytest.fixture
def unreachable() -> Iterator[WebApp]:
    yield from _unreachable_app()


def test_redis_unreachable_is_503_with_retry_after_on_every_route(unreachable: WebApp) -> None:
    client = unreachable.client
    answers = [
        client.get("/v1/bots", headers=ADMIN),
        client.post(
            "/v1/bots", json={"name": "x", "definition": {"template": "echo"}}, headers=ADMIN
        ),
        client.post(
            "/v1/channels/webhook/ch_x/messages",
            json={"conversationId": "u", "message": {"introMessage": {}}},
            headers={"Authorization": "Bearer sbat_x"},
        ),
        client.post("/api/webhookMessage/bot_x", json={"text": "hi", "sender": {"id": "s"}}),
        client.get("/v1/dead-letters", headers=ADMIN),
        client.get("/v1/turn-dead-letters", headers=ADMIN),
    ]
    for answer in answers:
        message = api_error(answer, 503, "unavailable")
        assert int(answer.headers["Retry-After"]) > 0
        assert "127.0.0.1" not in message and "Error" not in message


def test_readyz_says_redis_is_unreachable_without_quoting_redis(unreachable: WebApp) -> None:
    answer = unreachable.client.get("/readyz")
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert answer.get_json() == {
        "status": "not ready",
        "checks": {"redis": "unreachable", "reason": "Redis does not answer"},
        "error": {"code": "unavailable", "message": "Redis does not answer"},
    }


def test_a_conversation_id_on_another_channel_is_another_conversation(web: WebApp) -> None:
    """Item 6: channel B's token with channel A's conversationId neither joins A's
    conversation nor sees its variables."""
    first = web.channel()
    second = web.channel(first["botId"], webhookUrl="http://127.0.0.1:9/second")
    web.send(first, "shared", "hi", sessionData={"secret": "A's"})
    web.send(second, "shared", "hi")
    assert web.conversation_key(first, "shared") != web.conversation_key(second, "shared")
    assert len(web.inbox(first, "shared")) == 1 and len(web.inbox(second, "shared")) == 1
    bot = first["botId"]
    path = f"/v1/bots/{bot}/conversations/shared/session-data"
    api_error(web.client.get(path, headers=ADMIN), 409, "ambiguous_conversation", "channelId")
    api_error(
        web.client.get(f"/v1/bots/{bot}/conversations/shared/messages", headers=ADMIN),
        409,
        "ambiguous_conversation",
        "channelId",
    )
    api_error(
        web.client.post(
            f"/v1/bots/{bot}/conversations/shared/actions",
            json={"sendMessages": [{"text": "hello"}]},
            headers=ADMIN,
        ),
        409,
        "ambiguous_conversation",
        "channelId",
    )
    listed = web.client.get(f"/v1/bots/{bot}/conversations", headers=ADMIN).get_json()
    assert sorted(item["channelId"] for item in listed["items"]) == sorted(
        [first["id"], second["id"]]
    )
    mine = web.client.get(
        f"/v1/bots/{bot}/conversations?channelId={second['id']}", headers=ADMIN
    ).get_json()
    assert [(i["channelId"], i["sessionId"]) for i in mine["items"]] == [(second["id"], "shared")]
    assert mine["total"] == 1
    for channel in (first, second):
        turns.run_pending(
            web.redis, web.settings, web.sender, web.conversation_key(channel, "shared")
        )
    theirs = web.client.get(f"{path}?channelId={first['id']}", headers=ADMIN).get_json()
    assert theirs["sessionData"]["secret"] == "A's"
    own = web.client.get(f"{path}?channelId={second['id']}", headers=ADMIN).get_json()
    assert "secret" not in own["sessionData"]
    api_error(web.client.get(f"{path}?channelId=ch_nowhere", headers=ADMIN), 404, "not_found")
    acted = web.client.post(
        f"/v1/bots/{bot}/conversations/shared/actions?channelId={second['id']}",
        json={"sendMessages": [{"text": "from the agent"}]},
        headers=ADMIN,
    )
    assert acted.status_code == 202
    endpoints = {
        web.redis.hget(keys.delivery(web.conversation_key(second, "shared"), d), "endpointId")
        for d in acted.get_json()["deliveryIds"]
    }
    assert endpoints == {second["id"]}  # the agent's message goes to B's own webhook


def test_session_data_over_its_limits_is_422() -> None:
    with web_app(session_data_keys=2, conversation_data_keys=3) as web:
        channel = web.channel()
        api_error(
            web.send(channel, "u1", "hi", sessionData={"a": 1, "b": 2, "c": 3}),
            422,
            "validation_failed",
            "sessionData",
        )
        assert web.send(channel, "u1", "hi", sessionData={"a": 1, "b": 2}).status_code == 202
        assert web.send(channel, "u1", "hi", sessionData={"c": 1}).status_code == 202
        api_error(
            web.send(channel, "u1", "hi", sessionData={"d": 1}),
            422,
            "validation_failed",
            "sessionData",
        )
        assert _queued(web) == 2


def test_removing_a_bot_leaves_no_key_of_it(web: WebApp) -> None:
    channel = web.channel()
    web.say(channel, "u1", "hi")
    web.say(channel, "u2", "hello")
    key = web.conversation_key(channel, "u1")
    assert web.client.delete(f"/v1/bots/{channel['botId']}", headers=ADMIN).status_code == 204
    left = [
        k
        for k in web.redis.scan_iter(count=1000)
        if (channel["botId"] in k or key in k or channel["id"] in k) and ":idem:" not in k
    ]
    assert left == []


def test_failed_authentications_are_throttled_per_client_address() -> None:
    with web_app(auth_failures=3, auth_failures_per_target=100) as web:
        wrong = {"Authorization": "Bearer wrong-token"}
        from_a = {"REMOTE_ADDR": "10.0.0.1"}
        codes = [
            web.client.get("/v1/bots", headers=wrong, environ_base=from_a).status_code
            for _ in range(5)
        ]
        assert codes == [401, 401, 401, 429, 429]
        refused = web.client.get("/v1/bots", headers=ADMIN, environ_base=from_a)
        api_error(refused, 429, "rate_limited")  # even the right token waits: no oracle
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        other = web.client.get("/v1/bots", headers=ADMIN, environ_base={"REMOTE_ADDR": "10.0.0.2"})
        assert other.status_code == 200


def test_behind_a_trusted_proxy_failed_authentications_are_counted_per_forwarded_client() -> None:
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    trusted = (ipaddress.ip_network("127.0.0.1/32"),)
    with web_app(auth_failures=3, trusted_proxies=trusted, direct=True) as web:
        channel = web.channel()

        def send(client: str, token: str) -> int:
            return web.client.post(
                f"/v1/channels/webhook/{channel['id']}/messages",
                json={"conversationId": "u", "message": {"introMessage": {}}},
                headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": client},
                environ_base=proxy,
            ).status_code

        assert [send("10.0.0.1", "stale") for _ in range(4)] == [401, 401, 401, 429]
        assert send("10.0.0.1", channel["accessToken"]) == 429
        assert send("10.0.0.2", channel["accessToken"]) == 202  # another client behind it
        admin = web.client.get(
            "/v1/bots", headers={**ADMIN, "X-Forwarded-For": "10.0.0.2"}, environ_base=proxy
        )
        assert admin.status_code == 200
        # A peer that is not a trusted proxy names no one but itself.
        spoofed = [
            web.client.get(
                "/v1/bots",
                headers={"Authorization": "Bearer wrong", "X-Forwarded-For": f"10.0.2.{n}"},
                environ_base={"REMOTE_ADDR": "10.0.0.9"},
            ).status_code
            for n in range(4)
        ]
        assert spoofed == [401, 401, 401, 429]


def test_failed_authentications_are_throttled_per_target() -> None:
    with web_app(auth_failures=100, auth_failures_per_target=4) as web:
        channel = web.channel()
        codes = []
        for n in range(6):
            answer = web.client.post(
                f"/v1/channels/webhook/{channel['id']}/messages",
                json={"conversationId": "u", "message": {"introMessage": {}}},
                headers={"Authorization": "Bearer guess"},
                environ_base={"REMOTE_ADDR": f"10.0.1.{n}"},
            )
            codes.append(answer.status_code)
        assert codes == [401, 401, 401, 401, 429, 429]
        legacy = web.client.post(
            f"/api/webhookMessage/{channel['botId']}",
            json={"text": "hi", "sender": {"id": "s"}, "verifyToken": "wrong-verify-token"},
        )
        assert legacy.status_code == 401  # another target: the bot's verify tokens
        assert web.send(web.channel(), "u", "hi").status_code == 202  # other channels go on
        assert _queued(web) == 1


def test_by_default_failures_from_elsewhere_do_not_lock_a_channel_out() -> None:
    with web_app() as web:
        channel = web.channel()
        path = f"/v1/channels/webhook/{channel['id']}/messages"
        body = {"conversationId": "u", "message": {"introMessage": {}}}
        for n in range(15):
            for _ in range(web.settings.auth_failures):
                web.client.post(
                    path,
                    json=body,
                    headers={"Authorization": "Bearer guess"},
                    environ_base={"REMOTE_ADDR": f"10.0.2.{n}"},
                )
        answer = web.client.post(
            path,
            json=body,
            headers={"Authorization": f"Bearer {channel['accessToken']}"},
            environ_base={"REMOTE_ADDR": "10.0.3.1"},
        )
        assert answer.status_code == 202


def test_a_channel_keeps_the_verify_token_its_customer_chose_whatever_its_length(
    web: WebApp,
) -> None:
    """As on the hosted platform, where the customer chose it: a migrating integration keeps
    its own. Only an empty one is refused; one left out is made long."""
    bot = web.bot()
    path = f"/v1/bots/{bot['id']}/channels/webhook"
    answer = web.client.post(
        path, json={"webhookUrl": "http://127.0.0.1:9/h", "verifyToken": "tok"}, headers=ADMIN
    )
    assert answer.status_code == 201 and answer.get_json()["verifyToken"] == "tok"
    legacy = web.client.post(
        f"/api/webhookMessage/{bot['id']}",
        json={"text": "hi", "sender": {"id": "u1"}, "verifyToken": "tok"},
    )
    assert legacy.status_code == 200
    channel = web.channel(bot["id"])
    patched = web.client.patch(f"{path}/{channel['id']}", json={"verifyToken": ""}, headers=ADMIN)
    api_error(patched, 422, "validation_failed", "verifyToken")
    assert len(channel["verifyToken"]) >= 16


def test_the_web_app_refuses_a_short_admin_token(web: WebApp) -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        create_app(Services(web.settings.with_changes(admin_token="x" * 31), web.redis, web.sender))
    create_app(Services(web.settings.with_changes(admin_token="x" * 32), web.redis, web.sender))


def test_admin_tokens_are_listed_and_revoked(web: WebApp) -> None:
    made = admin_tokens.create(web.redis, "for the desk")
    listed = web.client.get("/v1/admin-tokens", headers=ADMIN).get_json()
    assert listed["total"] == 1
    (token,) = listed["items"]
    assert token["description"] == "for the desk" and made not in str(listed)
    mine = {"Authorization": f"Bearer {made}"}
    assert web.client.get("/v1/bots", headers=mine).status_code == 200
    assert web.client.delete(f"/v1/admin-tokens/{token['id']}", headers=ADMIN).status_code == 204
    api_error(web.client.get("/v1/bots", headers=mine), 401, "unauthorized")
    api_error(web.client.delete(f"/v1/admin-tokens/{token['id']}", headers=ADMIN), 404, "not_found")
    assert web.client.get("/v1/admin-tokens", headers=ADMIN).get_json()["items"] == []


def test_dead_letters_of_turns_are_listed_replayed_and_discarded(web: WebApp) -> None:
    channel = web.channel()
    web.send(channel, "u1", "poison")
    park_head(web.redis, web.settings, web.conversation_key(channel, "u1"), RuntimeError("boom"))
    listed = web.client.get("/v1/turn-dead-letters", headers=ADMIN).get_json()
    assert listed["total"] == 1
    (item,) = listed["items"]
    assert item["error"] == "RuntimeError: boom" and item["item"]["text"] == "poison"
    path = f"/v1/turn-dead-letters/{item['id']}"
    assert web.client.get(path, headers=ADMIN).get_json() == item
    by_bot = web.client.get(f"/v1/turn-dead-letters?botId={channel['botId']}", headers=ADMIN)
    assert by_bot.get_json()["total"] == 1
    replayed = web.client.post(f"{path}/replay", headers=ADMIN)
    assert replayed.status_code == 202 and replayed.get_json() == {
        "id": item["id"],
        "replayed": True,
    }
    assert [m["text"] for m in web.inbox(channel, "u1")] == ["poison"]
    api_error(web.client.post(f"{path}/replay", headers=ADMIN), 404, "not_found")
    api_error(web.client.delete(path, headers=ADMIN), 404, "not_found")
    api_error(web.client.get("/v1/turn-dead-letters/nonsense", headers=ADMIN), 404, "not_found")


def test_a_message_queued_is_in_the_inbox_of_its_channel_s_conversation(web: WebApp) -> None:
    channel = web.channel()
    accepted = ingress.accept(
        web.redis,
        web.settings,
        web.sender,
        channel=channel_store.get(web.redis, channel["id"]),
        conversation_id="core",
        message={"kind": "text", "text": "hi"},
    )
    assert accepted.queued and len(web.inbox(channel, "core")) == 1


def test_dead_letter_filters_that_cannot_match_are_refused(web: WebApp) -> None:
    backwards = {"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}
    api_error(
        web.client.get("/v1/dead-letters", query_string=backwards, headers=ADMIN),
        422,
        "validation_failed",
        "since",
    )
    replay = "/v1/dead-letters/replay"
    api_error(
        web.client.post(replay, json=backwards, headers=ADMIN), 422, "validation_failed", "since"
    )
    api_error(web.client.post(replay, json={"endpointId": "nope"}, headers=ADMIN), 404, "not_found")


class _OutOfDescriptors(redis.Connection):
    """A connection that cannot be made: the process is out of file descriptors."""

    def __init__(self, **options: Any) -> None:
        raise OSError(errno.EMFILE, "Too many open files")


def test_a_route_whose_redis_connection_cannot_be_made_is_503_not_500(web: WebApp) -> None:
    """A bare OSError while a connection is made (redis-py read its own version from its
    package files, once per connection) is Redis out of reach for now, as the spec says."""
    pool = redis.BlockingConnectionPool(connection_class=_OutOfDescriptors, timeout=1)
    short = LeanRedis(connection_pool=pool)
    app = create_app(Services(web.settings, cast(Redis, short), RecordingSender()))
    client = app.test_client()
    answers = [
        client.get("/v1/deliveries?limit=5", headers=ADMIN),
        client.post(
            "/v1/channels/webhook/ch_x/messages",
            json={"conversationId": "u", "message": {"introMessage": {}}},
            headers={"Authorization": "Bearer sbat_x"},
        ),
    ]
    for answer in answers:
        message = api_error(answer, 503, "unavailable")
        assert int(answer.headers["Retry-After"]) > 0
        assert "file descriptors" in message
