"""RabbitMQ as the Celery transport (`SWITCHBOARD_BROKER_URL=amqp://...`), Switchboard's state
in Redis: the scheduler's hand-outs of due deliveries reach the workers through RabbitMQ.
Each test has a virtual host of its own, so that two suites on one RabbitMQ never share a
queue."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from switchboard.embedded_redis import free_port
from tests.command_line import switchboard
from tests.integration.stacks import STACK_SETTINGS, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.rabbitmq import VirtualHost
from tests.receivers import Answer, Hit, Receiver, of_conversation, texts
from tests.redis_databases import db, url
from workers.celery_app import DELIVERY_QUEUE


def test_retries_go_through_rabbitmq_and_every_reply_arrives_in_order(
    vhost: VirtualHost, tmp_path: Path, receiver: Receiver
) -> None:
    tried: set[str] = set()

    def first_tries_fail(hit: Hit) -> Answer:
        """Each reply's first try gets 503: its retry is a hand-out through RabbitMQ."""
        text = hit.body.get("message", {}).get("text", "")
        if text in tried:
            return Answer(200)
        tried.add(text)
        return Answer(503)

    require_redis()
    receiver.behaviour = first_tries_fail
    with own_stack(tmp_path / "stack.log") as own:
        env = own.env(SWITCHBOARD_BROKER_URL=vhost.url, SWITCHBOARD_RETRY_SCHEDULE="0,0.2,0.4")
        for role in ("web", "worker", "scheduler"):
            own.start(role, env)
        own.wait_ready()
        wait_until(
            lambda: vhost.consumers(DELIVERY_QUEUE) == 1,
            what="the worker to consume the deliveries queue on RabbitMQ",
        )
        channel = own.api.echo_channel(receiver.url)
        conversations = ["ann", "bob", "cy"]
        for n in range(3):
            for conversation in conversations:
                assert own.api.send(channel, conversation, f"{conversation} {n}").status_code == 202

        wait_until(lambda: len(receiver.delivered()) == 9, timeout=60, what="every reply")
        delivered = receiver.delivered()
        for conversation in conversations:
            assert texts(of_conversation(delivered, conversation)) == [
                f"You said: {conversation} {n}" for n in range(3)
            ]
        # Every reply was tried twice, with one webhook-id.
        for text in {hit.body["message"]["text"] for hit in receiver.hits}:
            tries = [hit for hit in receiver.hits if hit.body["message"]["text"] == text]
            assert len(tries) == 2 and len({hit.webhook_id for hit in tries}) == 1


@pytest.mark.parametrize("role", ["worker", "scheduler", "web"])
def test_a_broker_that_refuses_us_is_a_message_at_start(vhost: VirtualHost, role: str) -> None:
    """A wrong login or an unknown vhost: each role says so once and exits 2, rather than
    crash at its first task or restart in a loop."""
    require_redis()
    for broker_url, said in (
        (vhost.url.replace("guest:guest@", "guest:wrong@"), "ACCESS_REFUSED"),
        (vhost.url + "-nope", "NOT_ALLOWED"),
    ):
        env = {
            **os.environ,
            **STACK_SETTINGS,
            "REDIS_URL": url(db("own")),
            "SWITCHBOARD_BROKER_URL": broker_url,
        }
        done = switchboard(role, *(["--port", str(free_port())] if role == "web" else []), env=env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines()[-1].startswith(
            "switchboard: SWITCHBOARD_BROKER_URL: the broker refused us: "
        )
        assert said in done.stderr and "Traceback" not in done.stderr


def test_a_worker_started_while_the_broker_is_away_still_answers(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Bot turns and first deliveries need only Redis: a worker (re)started during a broker
    outage works them, and only the scheduler's hand-outs wait for the broker."""
    require_redis()
    with own_stack(tmp_path / "stack.log") as own:
        away = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
        env = own.env(SWITCHBOARD_BROKER_URL=away)
        for role in ("web", "worker", "scheduler"):
            own.start(role, env)
        own.wait_ready()
        channel = own.api.echo_channel(receiver.url)
        for n in range(3):
            assert own.api.send(channel, "ann", f"ann {n}").status_code == 202
        wait_until(lambda: len(receiver.delivered()) == 3, timeout=30, what="every reply")
        assert texts(receiver.delivered()) == [f"You said: ann {n}" for n in range(3)]
