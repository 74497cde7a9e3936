"""Switchboard on a Redis Cluster (three masters, three replicas, made by the test) with
RabbitMQ as the Celery transport: order, retries, dead letters, kill -9 of a worker, and a
master stopped in the middle of the traffic."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from broker.core import ids, keys
from switchboard.local_cluster import LocalCluster
from tests.integration.delivery_helpers import dead_letters
from tests.integration.stacks import OwnStack, own_stack
from tests.integration.traffic import (
    Traffic,
    assert_every_acknowledged_reply_came,
    assert_one_webhook_id_per_reply,
    once_each,
)
from tests.polling import wait_until
from tests.prerequisites import require_redis, require_redis_server
from tests.rabbitmq import VirtualHost
from tests.receivers import Answer, Hit, Receiver, of_conversation, texts


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("cluster"), binary=require_redis_server()) as made:
        yield made


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


def spread_over_the_masters(
    cluster: LocalCluster, channel: dict[str, Any], count: int
) -> list[str]:
    """`count` conversation ids of `channel` whose keys fall on every master, at least two
    on each (ids chosen by chance would all fall on two masters one time in nine)."""
    masters = len(cluster.masters())
    chosen: list[str] = []
    per_master: dict[int, int] = {}
    n = 0
    while len(chosen) < count:
        name = f"user-{n}"
        n += 1
        key = ids.conversation_key(channel["botId"], "LIVE", channel["id"], name)
        port = cluster.master_of(keys.conversation_meta(key)).port
        every_master_has_two = len(per_master) == masters and min(per_master.values()) >= 2
        if per_master.get(port, 0) < 2 or every_master_has_two:
            per_master[port] = per_master.get(port, 0) + 1
            chosen.append(name)
    return chosen


def masters_with_conversations(cluster: LocalCluster) -> int:
    """How many masters hold a conversation's keys."""
    return sum(
        1
        for node in cluster.masters()
        if next(node.client().scan_iter(match=keys.conversation_meta("*")), None)
    )


def assert_in_order_once_each(receiver: Receiver, conversations: list[str], count: int) -> None:
    """Every conversation's replies arrived in order (the first delivery of each; a repeat
    after a crash comes later), each tried under one webhook-id."""
    delivered = once_each(receiver)
    for name in conversations:
        assert texts(of_conversation(delivered, name)) == [
            f"You said: {name} {n}" for n in range(count)
        ]
    assert_one_webhook_id_per_reply(receiver)


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
    conversations = spread_over_the_masters(cluster, channel, 8)
    for n in range(3):
        for name in conversations:
            assert on_cluster.api.send(channel, name, f"{name} {n}").status_code == 202

    wait_until(lambda: len(receiver.delivered()) == 24, timeout=60, what="every reply")
    assert_in_order_once_each(receiver, conversations, 3)
    assert masters_with_conversations(cluster) == 3
    # Every command was routed by its keys, without asking Redis what they are.
    live = [node for node in cluster.nodes if node.process is not None]
    asked = [node.client().info("commandstats").get("cmdstat_command|getkeys") for node in live]
    assert asked == [None] * len(live)
    assert all(
        len([h for h in receiver.hits if h.webhook_id == hit.webhook_id]) == 2
        for hit in receiver.hits
    )
    # The overview reads every master: Redis's memory is their sum.
    metrics = requests.get(f"{on_cluster.api.base}/metrics", timeout=10)
    assert metrics.status_code == 200
    (used,) = [
        float(line.split()[-1])
        for line in metrics.text.splitlines()
        if line.startswith('switchboard_redis_memory_bytes{kind="used"}')
    ]
    masters = [node.client().info("memory")["used_memory"] for node in cluster.masters()]
    assert len(masters) == 3 and used > max(masters)


def test_a_reply_that_keeps_failing_is_dead_lettered_and_replayed(
    on_cluster: OwnStack, receiver: Receiver
) -> None:
    receiver.behaviour = lambda hit: Answer(500 if "doomed" in hit.body["sessionId"] else 200)
    start(on_cluster, "web", "worker", "scheduler", SWITCHBOARD_RETRY_SCHEDULE="0,0.1,0.2")
    channel = on_cluster.api.echo_channel(receiver.url)
    for name in ("doomed", "fine"):
        for n in range(2):
            assert on_cluster.api.send(channel, name, f"{name} {n}").status_code == 202

    wait_until(
        lambda: len(dead_letters(on_cluster.api, endpointId=channel["id"])) == 2,
        timeout=60,
        what="the doomed conversation's two replies to be dead-lettered",
    )
    dead = dead_letters(on_cluster.api, endpointId=channel["id"])
    assert texts(of_conversation(receiver.delivered(), "fine")) == [
        "You said: fine 0",
        "You said: fine 1",
    ]
    receiver.behaviour = lambda hit: Answer(200)
    replayed = on_cluster.api.post("/v1/dead-letters/replay", json={"endpointId": channel["id"]})
    assert replayed.status_code == 202 and replayed.json()["replayed"] == 2, replayed.text
    wait_until(
        lambda: len(of_conversation(receiver.delivered(), "doomed")) == 2,
        timeout=30,
        what="the replays",
    )
    assert texts(of_conversation(receiver.delivered(), "doomed")) == [
        "You said: doomed 0",
        "You said: doomed 1",
    ]
    assert {hit.webhook_id for hit in of_conversation(receiver.delivered(), "doomed")} == {
        item["id"] for item in dead
    }


def test_a_worker_killed_mid_stream_loses_nothing(on_cluster: OwnStack, receiver: Receiver) -> None:
    receiver.behaviour = lambda hit: Answer(200, delay=0.1)
    fast = {"SWITCHBOARD_CLAIM_LEASE": "1", "SWITCHBOARD_TOTAL_TIMEOUT": "1.5"}
    for role in ("web", "scheduler"):
        on_cluster.start(role, on_cluster.env(**fast))
    doomed = on_cluster.start("worker", on_cluster.env(**fast)).processes["worker"]
    on_cluster.wait_ready()
    channel = on_cluster.api.echo_channel(receiver.url)
    conversations = [f"user-{n}" for n in range(8)]
    for n in range(5):
        for name in conversations:
            assert on_cluster.api.send(channel, name, f"{name} {n}").status_code == 202

    wait_until(lambda: len(receiver.hits) >= 8, what="the first worker to be under way")
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)
    assert len(receiver.delivered()) < 40  # killed in the middle
    on_cluster.start("worker", on_cluster.env(**fast))
    wait_until(
        lambda: len({hit.webhook_id for hit in receiver.delivered()}) == 40,
        timeout=60,
        what="every reply",
    )
    assert_in_order_once_each(receiver, conversations, 5)


def test_a_master_stopped_mid_stream_loses_no_acknowledged_message(
    on_cluster: OwnStack, cluster: LocalCluster, receiver: Receiver
) -> None:
    start(on_cluster, "web", "worker", "scheduler")
    channel = on_cluster.api.echo_channel(receiver.url)
    with Traffic(on_cluster.api, channel, [f"user-{n}" for n in range(12)]) as traffic:
        wait_until(lambda: len(receiver.delivered()) >= 30, what="traffic to flow")
        victim = cluster.master_of(keys.conversation_meta("*"))
        victim.stop()  # Redis 7 lets its replica catch up before it goes
        wait_until(
            lambda: victim.port not in {n.port for n in cluster.masters()},
            timeout=30,
            what="the replica to take over",
        )
        cluster.wait_healthy()
        promoted = time.monotonic()
        wait_until(
            lambda: traffic.acknowledged_since(promoted) >= 30,
            timeout=30,
            what="messages to be acknowledged again after the failover",
        )
    assert_every_acknowledged_reply_came(traffic, receiver)
    print(f"{len(traffic.sent)} sent, {len(traffic.refused())} refused during the failover")


def test_a_cluster_with_no_node_up_is_answered_503_and_every_process_waits_for_it(
    vhost: VirtualHost, tmp_path: Path, receiver: Receiver
) -> None:
    require_redis()
    binary = require_redis_server()
    with (
        LocalCluster(tmp_path / "cluster", replicas=0, binary=binary) as down,
        own_stack(
            tmp_path / "stack.log", REDIS_URL=down.url, SWITCHBOARD_BROKER_URL=vhost.url
        ) as own,
    ):
        start(own, "web", "worker", "scheduler")
        channel = own.api.echo_channel(receiver.url)
        assert own.api.send(channel, "ann", "before").status_code == 202
        wait_until(lambda: len(receiver.delivered()) == 1, what="the first reply")
        for node in down.nodes:
            node.stop()
        try:
            answer = own.api.send(channel, "ann", "while down")
            ready = requests.get(f"{own.api.base}/readyz", timeout=10)
        finally:
            for node in down.nodes:
                node.start(binary)  # the same slots, from its nodes.conf; the data is gone
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "unavailable"
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "unreachable"
        down.wait_healthy()
        wait_until(
            lambda: requests.get(f"{own.api.base}/readyz", timeout=10).status_code == 200,
            timeout=30,
            what="every process to be back on the cluster",
        )
        running = [p for stack in own.stacks for p in stack.processes.values()]
        assert all(process.poll() is None for process in running)
