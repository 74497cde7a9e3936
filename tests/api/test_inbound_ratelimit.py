"""Per-channel rate limiting of inbound messages: 429 with Retry-After, nothing queued."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from broker.channels import channel_store, rate_limit
from broker.core import keys, scripts
from broker.core.connection import connect
from tests.fakes import RecordingSender
from tests.web_app import ADMIN, WebApp, api_error, web_app
from web import create_app
from web.services import Services

pytestmark = pytest.mark.usefixtures("served_by")


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
    other = connect(web.settings.redis_url)
    try:
        second = create_app(Services(web.settings, other, RecordingSender()))
        clients = [web.client, second.test_client()]
        codes = [web.send(channel, "c", client=clients[n % 2]).status_code for n in range(4)]
    finally:
        other.close()
    assert codes == [202, 202, 202, 429]


def test_a_rate_of_zero_turns_the_limit_off(web: WebApp) -> None:
    settings = web.settings.with_changes(rate_limit_per_second=0)
    channel = channel_store.get(web.redis, web.channel()["id"])
    for _ in range(50):
        rate_limit.check(web.redis, settings, channel)


def test_a_channel_s_own_rate_limit_overrides_the_default(web: WebApp) -> None:
    """`rateLimit` through PATCH; its burst keeps the defaults' proportion
    (here 3 / 0.5 = 6 times the rate)."""
    roomy, default = web.channel(), web.channel()
    path = f"/v1/bots/{roomy['botId']}/channels/webhook/{roomy['id']}"
    patched = web.client.patch(path, json={"rateLimit": 2}, headers=ADMIN)
    assert patched.status_code == 200 and patched.get_json()["rateLimit"] == 2
    shown = web.client.get(path, headers=ADMIN).get_json()["rateLimit"]
    assert shown == 2 and isinstance(shown, int)  # as given, not 2.0
    codes = [web.send(roomy, f"c{n}", "hi").status_code for n in range(14)]
    assert codes.count(202) in (12, 13) and codes[-1] == 429
    assert [web.send(default, f"c{n}", "hi").status_code for n in range(4)][-1] == 429
    off = web.client.patch(path, json={"rateLimit": 0}, headers=ADMIN).get_json()
    assert off["rateLimit"] == 0
    assert all(web.send(roomy, "c", "hi").status_code == 202 for _ in range(20))


def test_a_rate_limit_too_low_to_mean_anything_is_refused(web: WebApp) -> None:
    """Without it, a rate of 1e-300 took the bucket's expiry past what EXPIRE takes, and
    every message of the channel was answered 500."""
    channel = web.channel()
    path = f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}"
    refused = web.client.patch(path, json={"rateLimit": 1e-300}, headers=ADMIN)
    assert "at least 0.001" in api_error(refused, 422, "validation_failed", "rateLimit")
    assert web.client.patch(path, json={"rateLimit": 0.001}, headers=ADMIN).status_code == 200
    assert web.send(channel, "c", "hi").status_code == 202
    assert web.send(channel, "c", "hi").status_code == 429


def test_the_bucket_of_a_rate_set_absurdly_low_still_answers(web: WebApp) -> None:
    """As with SWITCHBOARD_RATE_LIMIT=1e-300: the bucket's expiry and the wait are a day at
    most, not an error of EXPIRE."""
    granted, wait = scripts.run(web.redis, "rate_limit", [keys.rate_limit("ch_x")], [1e-300, 1, 1])
    assert (granted, wait) == (1, 0)
    assert 0 < web.redis.ttl(keys.rate_limit("ch_x")) <= 86400
    granted, wait = scripts.run(web.redis, "rate_limit", [keys.rate_limit("ch_x")], [1e-300, 1, 1])
    assert (granted, wait) == (0, 86400)


def test_by_default_a_burst_of_500_messages_from_8_threads_is_taken() -> None:
    """The defaults (1,000 messages/s, a burst of 2,000) fit an integration
    that sends 500 messages at once from 8 sender threads."""
    with web_app() as web:
        channel = web.channel()

        def send_some(thread: int) -> list[int]:
            client = web.app.test_client()
            return [
                web.send(channel, f"t{thread}-{n}", "hi", client=client).status_code
                for n in range(63)
            ]

        with ThreadPoolExecutor(8) as pool:
            codes = [code for some in pool.map(send_some, range(8)) for code in some]
        assert len(codes) == 504 and set(codes) == {202}


def test_a_fast_channel_s_tokens_are_taken_a_few_at_a_time_and_counted_in_redis() -> None:
    """At the default rate one script call takes a lease of tokens for this process: the
    bucket in Redis is charged for all of them at once, the next messages cost nothing."""
    with web_app() as web:
        settings = web.settings
        channel = channel_store.get(web.redis, web.channel()["id"])
        rate, burst = rate_limit.limits(settings, channel)
        lease = rate_limit.lease_size(rate, burst)
        assert lease > 1
        rate_limit.check(web.redis, settings, channel)
        left = float(web.redis.hget(keys.rate_limit(channel.id), "tokens") or 0)
        assert burst - lease <= left < burst - lease + 1
        for _ in range(lease - 1):
            rate_limit.check(web.redis, settings, channel)
        assert float(web.redis.hget(keys.rate_limit(channel.id), "tokens") or 0) == left
        rate_limit.check(web.redis, settings, channel)  # the lease is spent: a new one
        assert float(web.redis.hget(keys.rate_limit(channel.id), "tokens") or 0) < left


def test_a_slow_channel_is_counted_message_by_message() -> None:
    assert rate_limit.lease_size(10, 20) == 1
    assert rate_limit.lease_size(0.5, 3) == 1
