"""Per-channel rate limiting of inbound messages: 429 with Retry-After, nothing queued."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from broker.channels import rate_limit
from broker.core.connection import Redis
from tests.fakes import RecordingSender
from tests.web_app import WebApp, web_app
from web import create_app
from web.services import Services


@pytest.fixture
def web() -> Iterator[WebApp]:
    with web_app(rate_limit_per_second=0.5, rate_limit_burst=3) as made:
        yield made


def test_past_the_burst_a_channel_gets_429_with_retry_after(web: WebApp) -> None:
    channel = web.channel()
    answers = [web.send(channel, f"c{n}", "hi") for n in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    refused = answers[3]
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    assert len(web.queued_keys()) == 3
    assert len(web.sender.turns) == 3


def test_each_channel_has_its_own_bucket(web: WebApp) -> None:
    busy, quiet = web.channel(), web.channel()
    for n in range(3):
        web.send(busy, f"c{n}", "hi")
    assert web.send(busy, "c9", "hi").status_code == 429
    assert web.send(quiet, "c9", "hi").status_code == 202


def test_the_legacy_route_counts_against_the_same_bucket(web: WebApp) -> None:
    channel = web.channel()
    for n in range(3):
        web.send(channel, f"c{n}", "hi")
    answer = web.client.post(
        f"/api/webhookMessage/{channel['botId']}",
        json={"text": "hi", "sender": {"id": "s"}, "verifyToken": channel["verifyToken"]},
    )
    assert answer.status_code == 429
    assert answer.headers["Retry-After"]


def test_the_bucket_is_shared_by_every_web_process_through_redis(web: WebApp) -> None:
    """A second app with its own Redis connection stands for a second web process."""
    channel = web.channel()
    other: Redis = redis.Redis.from_url(web.settings.redis_url, decode_responses=True)
    try:
        second = create_app(Services(web.settings, other, RecordingSender()))
        clients = [web.client, second.test_client()]
        codes = [web.send(channel, "c", client=clients[n % 2]).status_code for n in range(4)]
    finally:
        other.close()
    assert codes == [202, 202, 202, 429]


def test_a_rate_of_zero_turns_the_limit_off(web: WebApp) -> None:
    settings = web.settings.with_changes(rate_limit_per_second=0)
    for _ in range(50):
        rate_limit.check(web.redis, settings, "ch_any")
