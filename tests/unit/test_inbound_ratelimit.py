"""Per-channel rate limiting of inbound messages: 429 with Retry-After, nothing queued."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from broker.channels import rate_limit
from tests.fakes import RecordingSender
from tests.web_app import WebApp, web_app
from web import create_app
from web.services import Services


@pytest.fixture
def web() -> Iterator[WebApp]:
    with web_app(rate_limit_per_second=0.5, rate_limit_burst=3) as made:
        yield made


def send(web: WebApp, channel: dict[str, Any], n: int) -> Any:
    return web.client.post(
        f"/v1/channels/webhook/{channel['id']}/messages",
        json={"conversationId": f"c{n}", "message": {"textMessage": {"text": "hi"}}},
        headers={"Authorization": f"Bearer {channel['accessToken']}"},
    )


def test_past_the_burst_a_channel_gets_429_with_retry_after(web: WebApp) -> None:
    channel = web.channel()
    answers = [send(web, channel, n) for n in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    refused = answers[3]
    assert refused.json["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    assert len(web.queued_keys()) == 3
    assert len(web.sender.turns) == 3


def test_each_channel_has_its_own_bucket(web: WebApp) -> None:
    busy, quiet = web.channel(), web.channel()
    for n in range(3):
        send(web, busy, n)
    assert send(web, busy, 9).status_code == 429
    assert send(web, quiet, 9).status_code == 202


def test_the_legacy_route_counts_against_the_same_bucket(web: WebApp) -> None:
    channel = web.channel()
    for n in range(3):
        send(web, channel, n)
    answer = web.client.post(
        f"/api/webhookMessage/{channel['botId']}",
        json={"text": "hi", "sender": {"id": "s"}, "verifyToken": channel["verifyToken"]},
    )
    assert answer.status_code == 429
    assert answer.headers["Retry-After"]


def test_the_bucket_is_shared_by_every_web_process_through_redis(web: WebApp) -> None:
    """A second app with its own Redis connection stands for a second web process."""
    channel = web.channel()
    other = redis.Redis.from_url(web.settings.redis_url, decode_responses=True)
    try:
        second = create_app(Services(web.settings, other, RecordingSender()))
        clients = [web.client, second.test_client()]
        codes = [
            clients[n % 2]
            .post(
                f"/v1/channels/webhook/{channel['id']}/messages",
                json={"conversationId": "c", "message": {"introMessage": {}}},
                headers={"Authorization": f"Bearer {channel['accessToken']}"},
            )
            .status_code
            for n in range(4)
        ]
    finally:
        other.close()
    assert codes == [202, 202, 202, 429]


def test_a_rate_of_zero_turns_the_limit_off(web: WebApp) -> None:
    settings = web.settings.with_changes(rate_limit_per_second=0)
    for _ in range(50):
        rate_limit.check(web.redis, settings, "ch_any")
