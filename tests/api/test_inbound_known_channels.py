"""A web process keeps the channels it authenticated (`broker/channels/channel_cache.py`): the
next message of one reads nothing before its ingress script, which checks that no channel
or bot changed meanwhile and that the failed-authentication counters allow it."""

from __future__ import annotations

from typing import Any

import pytest

from broker.auth import throttle
from tests.web_app import ADMIN, WebApp, api_error, web_app

pytestmark = pytest.mark.usefixtures("served_by")


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The targets whose credentials are read from Redis (`throttle.check`) from now on."""
    targets: list[str] = []
    real = throttle.check

    def check(r: Any, settings: Any, client: str, target: str, *args: Any) -> list[Any]:
        targets.append(target)
        return real(r, settings, client, target, *args)

    monkeypatch.setattr(throttle, "check", check)
    return targets


def test_the_next_message_of_a_known_channel_reads_nothing_before_it_is_queued(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = web.channel()
    reads = _reads(monkeypatch)
    assert [web.send(channel, "u", f"m{n}").status_code for n in range(3)] == [202] * 3
    assert reads == [f"channel:{channel['id']}"]
    assert [item["text"] for item in web.inbox(channel, "u")] == ["m0", "m1", "m2"]


def test_a_wrong_token_on_a_known_channel_is_checked_against_redis(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = web.channel()
    assert web.send(channel, "u", "hi").status_code == 202
    reads = _reads(monkeypatch)
    wrong = web.send({**channel, "accessToken": "sbat_wrong"}, "u", "hi")
    api_error(wrong, 401, "unauthorized")
    assert reads == [f"channel:{channel['id']}"]


def test_a_removed_channel_is_404_at_its_next_message(web: WebApp) -> None:
    channel = web.channel()
    assert web.send(channel, "u", "hi").status_code == 202
    removed = web.client.delete(
        f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}", headers=ADMIN
    )
    assert removed.status_code == 204
    api_error(web.send(channel, "v", "hi"), 404, "not_found")
    assert web.inbox(channel, "v") == []


def test_a_channel_moved_to_another_version_queues_there_from_its_next_message(
    web: WebApp,
) -> None:
    channel = web.channel()
    assert web.send(channel, "u", "before").status_code == 202
    path = f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}"
    moved = web.client.patch(path, json={"version": "DRAFT"}, headers=ADMIN)
    assert moved.status_code == 200, moved.get_json()
    assert web.send(channel, "u", "after").status_code == 202
    draft = {**channel, "version": "DRAFT"}
    assert [item["text"] for item in web.inbox(channel, "u")] == ["before"]
    assert [item["text"] for item in web.inbox(draft, "u")] == ["after"]


def test_redis_that_lost_its_data_knows_no_channel(web: WebApp) -> None:
    channel = web.channel()
    assert web.send(channel, "u", "hi").status_code == 202
    web.redis.flushdb()
    api_error(web.send(channel, "u", "again"), 404, "not_found")
    assert web.queued_keys() == []


def test_a_known_channel_waits_like_any_once_its_client_failed_too_often() -> None:
    with web_app(auth_failures=2, auth_failures_per_target=100) as web:
        channel = web.channel()
        from_a = {"REMOTE_ADDR": "10.0.2.1"}

        def post(token: str) -> int:
            answer = web.client.post(
                f"/v1/channels/webhook/{channel['id']}/messages",
                json={"conversationId": "u", "message": {"textMessage": {"text": "hi"}}},
                headers={"Authorization": f"Bearer {token}"},
                environ_base=from_a,
            )
            return answer.status_code

        right = channel["accessToken"]
        assert [post(right), post("guess"), post("guess"), post(right)] == [202, 401, 401, 429]
        assert len(web.inbox(channel, "u")) == 1


def test_a_known_channel_waits_like_any_once_it_was_guessed_at_too_often() -> None:
    with web_app(auth_failures=100, auth_failures_per_target=3) as web:
        channel = web.channel()
        assert web.send(channel, "u", "first").status_code == 202
        for n in range(3):
            guess = web.client.post(
                f"/v1/channels/webhook/{channel['id']}/messages",
                json={"conversationId": "u", "message": {"introMessage": {}}},
                headers={"Authorization": "Bearer guess"},
                environ_base={"REMOTE_ADDR": f"10.0.3.{n}"},
            )
            assert guess.status_code == 401
        refused = web.send(channel, "u", "second")
        api_error(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert [item["text"] for item in web.inbox(channel, "u")] == ["first"]
