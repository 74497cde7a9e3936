"""Switchboard on a Redis Cluster (three masters, three replicas, made by the test) with
RabbitMQ as the Celery transport: order, retries, dead letters, kill -9 of a worker, and a
master stopped in the middle of the traffic."""

from __future__ import annotations

import os
import signal
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.core import keys
from switchboard.local_cluster import LocalCluster
from tests.integration.delivery_helpers import dead_letters
from tests.integration.stacks import OwnStack, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis, require_redis_server
from tests.rabbitmq import VirtualHost
from tests.receivers import Answer, Hit, Receiver, of_conversation, texts


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    made = LocalCluster(tmp_path_factory.mktemp("cluster"), binary=require_redis_server())
    made.start()
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def cluster(redis_cluster: LocalCluster) -> LocalCluster:
    """The module's cluster, with a master for every slot (a test may have failed one over)."""
    redis_cluster.wait_healthy()
    return redis_cluster


@pytest.fixture
def on_cluster(cluster: LocalCluster, vhost: VirtualHost, tmp_path: Path) -> Iterator[OwnStack]:
    """A stack (not started) on the cluster, with Celery on a RabbitMQ virtual host."""
    require_redis()  # the stack's tests claim their databases there
    with own_stack(
        tmp_path / "stack.log", REDIS_URL=cluster.url, SWITCHBOARD_BROKER_URL=vhost.url
    ) as own:
        yield own


def start(own: OwnStack, *roles: str, **changes: str) -> None:
    for role in roles:
        own.start(role, own.env(**changes))
    own.wait_ready()


def masters_with_conversations(cluster: LocalCluster) -> int:
    """How many masters hold a conversation's keys."""
    return sum(
        1
        for node in cluster.masters()
        if next(node.client().scan_iter(match=keys.conversation_meta("*")), None)
    )


def assert_in_order_once_each(hits: list[Hit], conversations: list[str], count: int) -> None:
    """Every conversation's replies arrived in order, each tried under one webhook-id."""
    delivered = [hit for hit in hits if hit.status == 200]
    for name in conversations:
        assert texts(of_conversation(delivered, name)) == [
            f"You said: {name} {n}" for n in range(count)
        ]
    ids: dict[str, set[str]] = defaultdict(set)
    for hit in hits:
        ids[hit.body["message"]["text"]].add(hit.webhook_id)
    assert all(len(found) == 1 for found in ids.values()), ids


def test_replies_spread_over_the_masters_arrive_in_order_through_retries(
    on_cluster: OwnStack, cluster: LocalCluster, receiver: Receiver
) -> None:
    tried: set[str] = set()

    def first_tries_fail(hit: Hit) -> Answer:
        text = hit.body["message"]["text"]
        if text in tried:
            return Answer(200)
        tried.add(text)
        return Answer(503)

    receiver.behaviour = first_tries_fail
    start(on_cluster, "web", "worker", "scheduler")
    channel = on_cluster.api.echo_channel(receiver.url)
    conversations = [f"user-{n}" for n in range(8)]
    for n in range(3):
        for name in conversations:
            assert on_cluster.api.send(channel, name, f"{name} {n}").status_code == 202

    wait_until(lambda: len(receiver.delivered()) == 24, timeout=60, what="every reply")
    assert_in_order_once_each(receiver.hits, conversations, 3)
    assert masters_with_conversations(cluster) == 3
    assert all(
        len([h for h in receiver.hits if h.webhook_id == hit.webhook_id]) == 2
        for hit in receiver.hits
    )
