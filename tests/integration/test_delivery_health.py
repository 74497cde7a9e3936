"""The circuit breaker and auto-disable, on a worker with a small threshold and a short limit."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.delivery_helpers import deliveries, endpoint
from tests.integration.stacks import Api, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.receivers import Answer, Hit, Receiver, always, texts, wait_delivered

COOLDOWN = 0.6
DISABLE_AFTER = 4.0


@pytest.fixture(scope="module")
def touchy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    require_redis()
    with own_stack(tmp_path_factory.mktemp("touchy") / "stack.log") as own:
        env = own.env(
            SWITCHBOARD_CIRCUIT_THRESHOLD="3",
            SWITCHBOARD_CIRCUIT_COOLDOWN=str(COOLDOWN),
            SWITCHBOARD_CIRCUIT_COOLDOWN_MAX=str(COOLDOWN * 2),
            SWITCHBOARD_DISABLE_AFTER=str(DISABLE_AFTER),
        )
        for role in ("web", "worker", "scheduler"):
            own.start(role, env)
        own.wait_ready()
        yield own.api


class _FailsUntilTheSecondProbe:
    """Answers 500 until the second probe: a request after a quiet cool-down (retries come
    every 100 ms until the circuit opens). Counted as they come, however late the worker
    folds the failures in on a loaded machine."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0.0
        self.probes = 0

    def __call__(self, hit: Hit) -> Answer:
        with self._lock:
            if self._last and hit.at - self._last >= COOLDOWN * 0.9:
                self.probes += 1
            self._last = hit.at
            return Answer(500 if self.probes < 2 else 200)


def test_the_circuit_opens_stops_hammering_then_a_probe_closes_it(
    touchy: Api, receiver: Receiver
) -> None:
    answers = _FailsUntilTheSecondProbe()
    receiver.behaviour = answers
    # Long enough that no delivery reaches its last attempt, which goes out whatever the
    # circuit says, before the test is done.
    channel = touchy.echo_channel(receiver.url, retrySchedule=[0] + [0.1] * 49)
    conversations = ["a", "b", "c", "d"]
    for conversation in conversations:
        touchy.send(channel, conversation, "hi")

    wait_until(lambda: endpoint(touchy, channel["id"])["state"] == "circuit_open", what="open")
    wait_delivered(receiver, 4, "every reply once the second probe closed it")

    hits = sorted(receiver.hits, key=lambda hit: hit.at)
    gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
    first_probe = next(i for i, gap in enumerate(gaps, 1) if gap >= COOLDOWN * 0.9)
    # The threshold's three failures, and what was under way or retried before the worker
    # saw it open; without the circuit, four deliveries retried every 100 ms through the
    # cool-downs would have made dozens.
    assert first_probe <= 8, gaps
    assert answers.probes >= 2
    # The failed probe doubled the cool-down before the next one.
    assert gaps[first_probe] >= COOLDOWN * 1.5, gaps
    assert endpoint(touchy, channel["id"])["state"] == "healthy"
    assert sorted(texts(receiver.delivered())) == ["You said: hi"] * 4


def test_behind_an_open_circuit_deliveries_keep_to_their_schedule_and_end_dead(
    touchy: Api, receiver: Receiver
) -> None:
    """Attempts the open circuit holds back count, unsent: a backlog is dead-lettered at the
    end of its schedule, not held for as many probes as it has deliveries. Its last attempt
    goes out, open circuit or not: none is dead-lettered without a request."""
    receiver.behaviour = always(500)
    channel = touchy.echo_channel(receiver.url, retrySchedule=[0, 0.2, 0.2])
    conversations = [f"c{n}" for n in range(8)]
    for conversation in conversations:
        touchy.send(channel, conversation, "hi")

    def dead() -> list[dict[str, Any]]:
        return deliveries(touchy, endpointId=channel["id"], status="dead")

    wait_until(lambda: len(dead()) == len(conversations), timeout=30, what="all dead")
    assert len(receiver.hits) < 3 * len(conversations)  # the circuit spared the endpoint
    errors = [attempt.get("error", "") for item in dead() for attempt in item["attempts"]]
    assert len(errors) == 3 * len(conversations)
    assert any(
        error.startswith("not sent: the endpoint's circuit breaker is open") for error in errors
    )
    for item in dead():
        assert item["attempts"][-1].get("statusCode") == 500, item["attempts"]


def test_an_endpoint_failing_for_the_configured_time_is_disabled_then_enabled(
    touchy: Api, receiver: Receiver
) -> None:
    receiver.behaviour = always(503)
    channel = touchy.echo_channel(receiver.url, retrySchedule=[0] + [0.1] * 49)
    touchy.send(channel, "patient", "one")
    touchy.send(channel, "patient", "two")

    view = wait_until(
        lambda: (found := endpoint(touchy, channel["id"]))["state"] == "disabled" and found,
        timeout=DISABLE_AFTER * 3,
        what="auto-disable",
    )
    assert view["disabledReason"] == f"no successful attempt for {DISABLE_AFTER} s"
    hits_when_disabled = len(receiver.hits)
    first = min(hit.at for hit in receiver.hits)
    assert max(hit.at for hit in receiver.hits) - first >= DISABLE_AFTER - 0.1
    items = deliveries(touchy, endpointId=channel["id"])
    assert sorted(item["status"] for item in items) == ["waiting", "waiting"]

    receiver.behaviour = always(200)
    assert touchy.post(f"/v1/endpoints/{channel['id']}/enable").status_code == 200
    wait_delivered(receiver, 2, "the replies after enable")
    assert texts(receiver.delivered()) == ["You said: one", "You said: two"]
    assert len(receiver.hits) <= hits_when_disabled + 3
