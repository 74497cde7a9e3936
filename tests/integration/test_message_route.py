"""`switchboard web` answers the message routes itself, without Flask (`web/message_route.py`):
over HTTP, each answer is the one the Flask app gives the same request, byte for byte; what
it does not take reaches the app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from broker.conversations import ingress
from switchboard.http_protocol import Limits
from switchboard.web_server import answered_directly, answered_inline
from tests.integration.raw_http import Reply, request
from tests.loop_server import LoopServer
from tests.web_app import WebApp, web_app


@pytest.fixture
def web() -> Iterator[WebApp]:
    with web_app(direct=False) as made:
        yield made


@pytest.fixture
def server(web: WebApp) -> Iterator[LoopServer]:
    running = LoopServer(
        web.app,
        Limits(body_bytes=web.settings.max_body_bytes),
        answered_inline,
        answered_directly(web.app.extensions["switchboard"]),
    )
    yield running
    running.stop()


def _over_http(server: LoopServer, target: str, headers: dict[str, str], body: bytes) -> Reply:
    head = f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    reply = request(server.port, head.rstrip("\r\n").encode("latin-1"), body)
    assert reply is not None
    return reply


def _same_answer(
    web: WebApp, server: LoopServer, target: str, headers: dict[str, str], body: bytes
) -> Reply:
    """The answer over HTTP, checked against the Flask app's to the same request."""
    reply = _over_http(server, target, headers, body)
    flask = web.client.post(target, data=body, headers=headers)
    assert (reply.status, reply.body) == (flask.status_code, flask.get_data()), reply
    assert reply.headers["content-type"] == flask.headers["Content-Type"]
    assert reply.headers.get("retry-after") == flask.headers.get("Retry-After")
    return reply


def _message(text: str, **extra: Any) -> bytes:
    body = {"conversationId": "u1", "message": {"textMessage": {"text": text}}, **extra}
    return json.dumps(body).encode()


def test_a_message_is_queued_and_its_repeat_answered_as_the_app_answers_it(
    web: WebApp, server: LoopServer
) -> None:
    channel = web.channel()
    target = f"/v1/channels/webhook/{channel['id']}/messages"
    auth = {"Authorization": f"Bearer {channel['accessToken']}", "Content-Type": "application/json"}
    first = _over_http(server, target, auth, _message("hi", messageId="m-1"))
    assert first.status == 202 and first.json()["messageId"] == "m-1"
    _same_answer(web, server, target, auth, _message("hi", messageId="m-1"))
    assert [item["text"] for item in web.inbox(channel, "u1")] == ["hi"]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Authorization": "Bearer wrong"}, _message("hi"), 401),
        ({"Authorization": ""}, _message("hi"), 401),
        ({"Content-Type": "text/plain"}, b"hello", 415),
        ({"Content-Type": "application/json"}, b"{", 400),
        ({"Content-Type": "application/json"}, b"[1]", 422),
        ({"Content-Type": "application/json"}, b'{"conversationId": "u1"}', 422),
        ({"Content-Type": "application/json"}, _message("\ud800"), 422),
        ({"Content-Type": "application/json; charset=utf-8"}, _message("caf\u00e9"), 202),
    ],
)
def test_refusals_and_odd_requests_are_answered_as_the_app_answers_them(
    web: WebApp, server: LoopServer, headers: dict[str, str], body: bytes, status: int
) -> None:
    channel = web.channel()
    target = f"/v1/channels/webhook/{channel['id']}/messages"
    auth = {"Authorization": f"Bearer {channel['accessToken']}", **headers}
    reply = _over_http(server, target, auth, body)
    assert reply.status == status, reply
    if status != 202:
        _same_answer(web, server, target, auth, body)


def test_an_unknown_channel_and_a_channel_id_in_escapes_are_told_apart(
    web: WebApp, server: LoopServer
) -> None:
    channel = web.channel()
    auth = {"Authorization": f"Bearer {channel['accessToken']}", "Content-Type": "application/json"}
    _same_answer(web, server, "/v1/channels/webhook/ch_nothing/messages", auth, _message("hi"))
    escaped = "".join(f"%{ord(c):02X}" for c in channel["id"])
    reply = _over_http(server, f"/v1/channels/webhook/{escaped}/messages?x=1", auth, _message("hi"))
    assert reply.status == 202, reply


def test_what_the_server_does_not_take_reaches_the_app(web: WebApp, server: LoopServer) -> None:
    channel = web.channel()
    auth = {"Authorization": f"Bearer {channel['accessToken']}"}
    head = f"GET /v1/channels/webhook/{channel['id']}/messages HTTP/1.1\r\nHost: x".encode()
    wrong_method = request(server.port, head)
    assert wrong_method is not None and wrong_method.status == 405
    extra_slash = f"/v1/channels/webhook/{channel['id']}/messages/"
    _same_answer(web, server, extra_slash, auth, _message("hi"))


def test_a_failure_is_a_logged_json_500_as_from_the_app(
    web: WebApp, server: LoopServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = web.channel()
    target = f"/v1/channels/webhook/{channel['id']}/messages"
    auth = {"Authorization": f"Bearer {channel['accessToken']}", "Content-Type": "application/json"}

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ingress, "accept", broken)
    reply = _same_answer(web, server, target, auth, _message("hi"))
    assert reply.status == 500 and reply.json()["error"]["code"] == "internal_error"


def test_the_legacy_route_is_answered_as_the_app_answers_it(
    web: WebApp, server: LoopServer
) -> None:
    channel = web.channel()
    target = f"/api/webhookMessage/{channel['botId']}"
    plain = {"Content-Type": "application/json"}

    def legacy(token: str, sender: str) -> bytes:
        return json.dumps({"verifyToken": token, "text": "hi", "sender": {"id": sender}}).encode()

    taken = _same_answer(web, server, target, plain, legacy(channel["verifyToken"], "s1"))
    assert (taken.status, taken.body) == (200, b"EVENT_RECEIVED")
    assert len(web.inbox(channel, "s1")) == 2  # once over HTTP, once through the app
    _same_answer(web, server, target, plain, legacy("wrong", "s2"))
    _same_answer(web, server, "/api/webhookMessage/bot_nothing", plain, legacy("x", "s3"))
    _same_answer(web, server, target, plain, b'{"text": "hi"}')
