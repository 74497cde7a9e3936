"""The web process, spoken to as a careless or hostile client would: a refused
body never breaks a kept-alive connection, a malformed chunked body or header is a JSON 400,
a path that is not UTF-8 a JSON 400, a non-ASCII bearer token a JSON 401."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from broker.core.defaults import MAX_BODY_BYTES
from switchboard.stack import Stack
from tests.integration.raw_http import request
from tests.integration.stacks import ADMIN_TOKEN, Api
from tests.polling import wait_until
from tests.receivers import Receiver


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 65536
        sent += 65536


@pytest.mark.parametrize("chunked", [True, False])
@pytest.mark.parametrize("authenticated", [True, False])
def test_after_a_refused_body_a_kept_alive_client_s_next_request_works(
    api: Api, receiver: Receiver, chunked: bool, authenticated: bool
) -> None:
    """Item 5: 413 says `Connection: close`, so the next request of a keep-alive client goes
    on a new connection instead of failing."""
    channel = api.echo_channel(receiver.url)
    token = channel["accessToken"] if authenticated else "wrong"
    session = requests.Session()
    over = MAX_BODY_BYTES + 200_000
    answer = session.post(
        channel["messagesUrl"],
        data=_chunks(over) if chunked else b" " * over,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )
    # A body over the limit, declared or chunked, is refused before the token is looked at.
    assert answer.status_code == 413
    assert answer.headers["Connection"] == "close"
    assert answer.json()["error"]["code"] == "body_too_large"
    after = session.post(
        channel["messagesUrl"],
        json={"conversationId": "u1", "message": {"introMessage": {}}},
        headers={"Authorization": f"Bearer {channel['accessToken']}"},
        timeout=10,
    )
    assert after.status_code == 202


def _port(api: Api) -> int:
    port = urlsplit(api.base).port
    assert port is not None
    return port


def test_a_malformed_chunked_body_is_a_json_400(api: Api, receiver: Receiver) -> None:
    """Item 4: the body reader's error is the client's fault, not a 500."""
    channel = api.echo_channel(receiver.url)
    path = urlsplit(channel["messagesUrl"]).path
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {channel['accessToken']}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked"
    ).encode()
    for body in (b"zz\r\n{}\r\n0\r\n\r\n", b"5\r\n{}\r\n0\r\n\r\n", b"3\r\n{}", b"-1\r\n"):
        reply = request(_port(api), head, body, half_close=True)
        assert reply is not None
        assert reply.status == 400 and reply.is_json_error(), (body, reply)
        assert reply.headers["connection"] == "close"


@pytest.mark.parametrize(
    "header",
    [
        b"X-Note: a\x01b",
        b"X-Note: \x7f",
        b"Bad Name: x",
        b"X-Note: caf\xc3\xa9\r\nX-Other: \xff\xfe",
        b"Transfer-Encoding: gzip",
        b"Content-Length: -1",
        b"Content-Length: 1\r\nContent-Length: 2",
    ],
)
def test_a_malformed_header_is_a_json_4xx(api: Api, header: bytes) -> None:
    reply = request(_port(api), b"GET /v1/bots HTTP/1.1\r\nHost: x\r\n" + header, half_close=True)
    assert reply is not None
    assert 400 <= reply.status < 500 and reply.is_json_error(), reply


def test_a_path_that_is_not_utf8_is_a_json_400_on_every_route(api: Api, receiver: Receiver) -> None:
    """`%ff` is not read as U+FFFD: it does not reach the conversation of that id."""
    channel = api.echo_channel(receiver.url)
    assert api.send(channel, "\ufffd", "hi", sessionData={"kept": "yes"}).status_code == 202
    data = f"/v1/bots/{channel['botId']}/conversations/%EF%BF%BD/session-data"
    # Its session data is merged by the bot turn, after the conversation is first readable.
    wait_until(
        lambda: api.get(data).json().get("sessionData", {}).get("kept") == "yes",
        what="the conversation's session data",
    )
    admin = f"Authorization: Bearer {ADMIN_TOKEN}"
    for line in (
        f"GET /v1/bots/{channel['botId']}/conversations/%ff/session-data",
        f"DELETE /v1/bots/{channel['botId']}/conversations/%ED%B0%80/session-data",
        f"GET /v1/bots/{channel['botId']}/conversations/%C3/messages?channelId=%ff",
        f"POST /v1/channels/webhook/{channel['id']}%ff/messages",
        "GET /healthz%ff",
        "GET /nowhere/%ff",
    ):
        head = f"{line} HTTP/1.1\r\nHost: x\r\n{admin}\r\nContent-Length: 2".encode()
        reply = request(_port(api), head, b"{}")
        assert reply is not None and reply.status == 400 and reply.is_json_error(), (line, reply)
        assert reply.json()["error"]["code"] == "bad_request"
        assert "not valid UTF-8" in reply.json()["error"]["message"]
    assert api.get(data).json()["sessionData"]["kept"] == "yes"


@pytest.mark.parametrize("token", ["é".encode("latin-1"), "é".encode(), b"\x80\xff", b"a b c"])
def test_a_bearer_token_that_no_token_could_be_is_a_json_401(
    api: Api, receiver: Receiver, token: bytes
) -> None:
    """Item 4: `Authorization: Bearer é` on the admin routes and on the agent route."""
    channel = api.echo_channel(receiver.url)
    for line in (
        b"GET /v1/bots HTTP/1.1",
        b"GET /v1/dead-letters HTTP/1.1",
        f"POST /v1/bots/{channel['botId']}/conversations/u1/actions HTTP/1.1".encode(),
    ):
        head = line + b"\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2"
        reply = request(_port(api), head + b"\r\nAuthorization: Bearer " + token, b"{}")
        assert reply is not None
        assert reply.status == 401 and reply.is_json_error(), (line, reply)


def test_the_right_admin_token_still_works(api: Api, stack: Stack) -> None:
    reply = request(
        stack.port,
        f"GET /v1/bots HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}".encode(),
    )
    assert reply is not None and reply.status == 200
