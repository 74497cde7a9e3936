"""Switchboard on Redis Sentinel (a master, two replicas and three Sentinels, made by the test),
with Celery on the same Sentinel URL: the master stopped in the middle of the traffic, and a
replica promoted in its place."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.local_sentinel import LocalSentinel
from tests.integration.stacks import OwnStack, own_stack
from tests.integration.traffic import Traffic, assert_every_acknowledged_reply_came
from tests.polling import wait_until
from tests.prerequisites import require_redis, require_redis_server
from tests.receivers import Answer, Hit, Receiver

CONVERSATIONS = [f"user-{n}" for n in range(10)]


@pytest.fixture(scope="module")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSentinel]:
    folder = tmp_path_factory.mktemp("sentinel")
    with LocalSentinel(folder, binary=require_redis_server()) as made:
        yield made


@pytest.fixture
def sentinel(redis_sentinel: LocalSentinel) -> LocalSentinel:
    """The module's Sentinels and their nodes, every node running (a test may have stopped
    the master) and a master agreed on."""
    for node in redis_sentinel.nodes:
        if node.process is None:
            redis_sentinel.restart(node)
    redis_sentinel.wait_healthy()
    return redis_sentinel


@pytest.fixture
def on_sentinel(sentinel: LocalSentinel, tmp_path: Path) -> Iterator[OwnStack]:
    """A stack (not started) on the Sentinels' master; Celery's broker is left to default
    to the same Sentinel URL."""
    require_redis()  # the stack claims its databases there, even when it does not use them
    with own_stack(
        tmp_path / "stack.log",
        REDIS_URL=sentinel.url,
        SWITCHBOARD_BROKER_URL="",
        SWITCHBOARD_LOG_LEVEL="INFO",
        # The stacks' retry schedule lasts two seconds: an open circuit would use it up
        # while the failover is the thing under test.
        SWITCHBOARD_CIRCUIT_THRESHOLD="1000",
    ) as own:
        yield own


def test_a_failover_during_traffic_loses_no_acknowledged_message(
    on_sentinel: OwnStack, sentinel: LocalSentinel, receiver: Receiver
) -> None:
    receiver.behaviour = first_try_of_every_third_fails
    for role in ("web", "worker", "scheduler"):
        on_sentinel.start(role)
    on_sentinel.wait_ready()
    channel = on_sentinel.api.echo_channel(receiver.url)

    with Traffic(on_sentinel.api, channel, CONVERSATIONS) as traffic:
        started = time.monotonic()
        wait_until(lambda: traffic.acknowledged_since(started) >= 100, what="traffic before")
        old = sentinel.stop_master()
        stopped = time.monotonic()
        new = sentinel.wait_master_changed(old)
        promoted = time.monotonic()
        wait_until(
            lambda: traffic.acknowledged_since(promoted) >= 100, timeout=20, what="traffic after"
        )

    assert new.port != old.port
    # A reply delivered while its record could not be written is tried again, under the
    # same webhook-id: the receiver sees it once per webhook-id.
    delivered = assert_every_acknowledged_reply_came(traffic, receiver)
    # One master takes the whole of each request: a refused message was not taken.
    assert len(delivered) == sum(len(numbers) for numbers in traffic.acknowledged().values())
    refused = traffic.refused()
    failed = [sent.at for sent in refused]
    print(
        f"failover: master {old.port} -> {new.port} promoted {promoted - stopped:.2f} s after"
        f" the stop; {len(traffic.sent)} sends, {len(refused)} refused"
        + (f" over {max(failed) - min(failed):.2f} s" if failed else "")
        + f"; {len(receiver.hits)} tries for {len(delivered)} replies"
    )


def first_try_of_every_third_fails(hit: Hit) -> Answer:
    """A third of the replies fail their first try, so that their retries go through the
    scheduler and Celery; spread so that the endpoint never fails ten times in a row (its
    circuit would open)."""
    name, number = hit.body["message"]["text"].removeprefix("You said: user-").split()
    return Answer(503 if hit.try_number == 1 and (int(name) + int(number)) % 3 == 0 else 200)
