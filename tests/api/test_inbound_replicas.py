"""SWITCHBOARD_INGRESS_REPLICAS on both message routes, in-process on the test Redis, which has
no replica: WAIT answers 0 once its time is up. (tests/integration/test_ingress_replicas.py
runs a real master and replica.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from werkzeug.test import TestResponse

from broker.core import scripts
from broker.core.connection import Pipeline, Redis
from tests.app_redis import ON_CLUSTER
from tests.web_app import WebApp, api_error, web_app

pytestmark = [
    pytest.mark.usefixtures("served_by"),
    pytest.mark.skipif(ON_CLUSTER, reason="a Redis Cluster refuses SWITCHBOARD_INGRESS_REPLICAS"),
]


@pytest.fixture
def web() -> Iterator[WebApp]:
    with web_app(ingress_replicas=1, ingress_replica_wait=0.05) as made:
        yield made


def current(web: WebApp, channel: dict[str, Any], key: str) -> TestResponse:
    body = {"conversationId": "user-1", "message": {"textMessage": {"text": "hello"}}}
    return web.post_message(channel, body, {"Idempotency-Key": key})


def legacy(web: WebApp, channel: dict[str, Any], key: str) -> TestResponse:
    return web.client.post(
        f"/api/webhookMessage/{channel['botId']}",
        json={"text": "hello", "sender": {"id": "user-1"}, "verifyToken": channel["verifyToken"]},
        headers={"Idempotency-Key": key},
    )


@pytest.mark.parametrize("send", [current, legacy])
def test_a_message_no_replica_has_is_503_and_taken_back(
    web: WebApp, send: Callable[[WebApp, dict[str, Any], str], TestResponse]
) -> None:
    channel = web.channel(verifyToken="verify-token-one")
    for _ in range(2):
        answer = send(web, channel, "key-1")
        api_error(answer, 503, "unavailable")
        assert answer.headers["Retry-After"] == "5"
        assert web.inbox(channel, "user-1") == []


def before_the_take_back(
    monkeypatch: pytest.MonkeyPatch, happens: Callable[[Redis, list[str]], None]
) -> None:
    """`happens` (given Redis and the take-back's keys) just before the take-back runs."""
    run = scripts.run

    def then_run(r: Redis, name: str, keys: list[str], args: list[Any]) -> Any:
        if name == "ingress_retract":
            happens(r, keys)
        return run(r, name, keys, args)

    monkeypatch.setattr(scripts, "run", then_run)


def test_a_message_a_turn_took_before_the_replicas_had_it_is_acknowledged(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def the_turn_takes_the_inbox(r: Redis, keys: list[str]) -> None:
        r.delete(keys[-1])

    before_the_take_back(monkeypatch, the_turn_takes_the_inbox)
    channel = web.channel()

    assert current(web, channel, "key-2").status_code == 202


def test_without_replicas_asked_for_no_wait_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    execute = scripts.execute

    def recorded(r: Redis, build: Callable[[Pipeline], None], **options: Any) -> list[Any]:
        def build_and_record(pipe: Pipeline) -> None:
            build(pipe)
            sent.extend(str(args[0]) for args, _ in pipe.command_stack)

        return execute(r, build_and_record, **options)

    monkeypatch.setattr(scripts, "execute", recorded)
    with web_app() as web:
        channel = web.channel()
        assert web.send(channel, "user-1", "hello").status_code == 202
    assert "EVALSHA" in sent and "WAIT" not in sent


def test_a_message_redis_would_not_let_be_taken_back_is_503_and_left_queued(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without replicas for too long, a master refuses every write: the take-back too."""

    def redis_refuses(r: Redis, keys: list[str]) -> None:
        raise redis.ResponseError("NOREPLICAS Not enough good replicas to write.")

    before_the_take_back(monkeypatch, redis_refuses)
    channel = web.channel()

    message = api_error(current(web, channel, "key-3"), 503, "unavailable")

    assert "may have been queued" in message
    assert [queued["text"] for queued in web.inbox(channel, "user-1")] == ["hello"]
