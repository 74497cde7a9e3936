"""Body limits through the real web server: 413 with a length, and for a chunked body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from tests.integration.stacks import Api
from tests.receivers import Receiver

LIMIT = 1024 * 1024


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"conversationId": "c1", "message": {"textMessage": {"text": "'
    sent = 0
    while sent < total:
        yield b"x" * 65536
        sent += 65536
    yield b'"}}}'


def _post(channel: dict[str, Any], data: Any) -> requests.Response:
    return requests.post(
        channel["messagesUrl"],
        data=data,
        headers={
            "Authorization": f"Bearer {channel['accessToken']}",
            "Content-Type": "application/json",
        },
        timeout=30,
    )


def test_a_body_over_the_limit_is_413_with_or_without_a_length(
    api: Api, receiver: Receiver
) -> None:
    channel = api.echo_channel(receiver.url)
    with_length = _post(channel, b"".join(_chunks(LIMIT + 10)))
    assert with_length.status_code == 413
    assert with_length.json()["error"]["code"] == "body_too_large"
    chunked = _post(channel, _chunks(LIMIT + 10))
    assert chunked.request.headers.get("Transfer-Encoding") == "chunked"
    assert chunked.status_code == 413
    assert chunked.json()["error"]["code"] == "body_too_large"
    small = _post(
        channel, iter([b'{"conversationId": "c1", ', b'"message": {"introMessage": {}}}'])
    )
    assert small.request.headers.get("Transfer-Encoding") == "chunked"
    assert small.status_code == 202
