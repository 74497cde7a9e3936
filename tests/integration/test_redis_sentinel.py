"""Switchboard on Redis Sentinel (a master, two replicas and three Sentinels, made by the test),
with Celery on the same Sentinel URL: the master stopped in the middle of the traffic, and a
replica promoted in its place."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from switchboard.local_sentinel import LocalSentinel
from tests.integration.stacks import Api, OwnStack, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis, require_redis_server
from tests.receivers import Answer, Hit, Receiver, of_conversation, texts

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
    ) as own:
        yield own


@dataclass
class Sent:
    conversation: str
    number: int
    status: int
    #: The answer's JSON body, or what went wrong when there was no answer.
    body: object
    at: float


class Traffic:
    """A thread sending the conversations' messages one after another, round after round,
    until stopped; every send recorded."""

    def __init__(self, api: Api, channel: dict[str, object]) -> None:
        self.sent: list[Sent] = []
        self._api = api
        self._channel = channel
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def acknowledged_since(self, moment: float) -> int:
        """How many sends were answered 202 since `moment` (of `time.monotonic`)."""
        return sum(1 for sent in list(self.sent) if sent.status == 202 and sent.at > moment)

    def _run(self) -> None:
        number = 0
        while not self._stopping.is_set():
            for name in CONVERSATIONS:
                self.sent.append(self._send(name, number))
            number += 1

    def _send(self, name: str, number: int) -> Sent:
        try:
            answer = self._api.send(self._channel, name, f"{name} {number}")
        except requests.RequestException as exc:
            return Sent(name, number, 0, repr(exc), time.monotonic())
        try:
            body: object = answer.json()
        except ValueError:
            body = answer.text
        return Sent(name, number, answer.status_code, body, time.monotonic())


def test_a_failover_during_traffic_loses_no_acknowledged_message(
    on_sentinel: OwnStack, sentinel: LocalSentinel, receiver: Receiver
) -> None:
    receiver.behaviour = first_try_of_every_third_fails
    for role in ("web", "worker", "scheduler"):
        on_sentinel.start(role)
    on_sentinel.wait_ready()
    channel = on_sentinel.api.echo_channel(receiver.url)

    with Traffic(on_sentinel.api, channel) as traffic:
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
    refused = [sent for sent in traffic.sent if sent.status != 202]
    assert all(
        sent.status == 503 and isinstance(sent.body, dict) and "error" in sent.body
        for sent in refused
    ), refused
    acknowledged: dict[str, list[int]] = defaultdict(list)
    for sent in traffic.sent:
        if sent.status == 202:
            acknowledged[sent.conversation].append(sent.number)
    expected = sum(len(numbers) for numbers in acknowledged.values())
    # A reply delivered while its record could not be written is tried again, under
    # the same webhook-id: the receiver sees it once per webhook-id.
    wait_until(lambda: len(once_each(receiver)) >= expected, timeout=30, what="every reply")
    delivered = once_each(receiver)
    for name in CONVERSATIONS:
        assert texts(of_conversation(delivered, name)) == [
            f"You said: {name} {number}" for number in acknowledged[name]
        ], name
    assert len(delivered) == expected
    ids: dict[str, set[str]] = defaultdict(set)
    for hit in receiver.hits:
        ids[hit.body["message"]["text"]].add(hit.webhook_id)
    assert all(len(found) == 1 for found in ids.values()), ids

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


def once_each(receiver: Receiver) -> list[Hit]:
    """The replies delivered, the first delivery of each webhook-id."""
    first: dict[str, Hit] = {}
    for hit in receiver.delivered():
        first.setdefault(hit.webhook_id, hit)
    return list(first.values())
