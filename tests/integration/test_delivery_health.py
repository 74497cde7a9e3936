"""The circuit breaker and auto-disable, on a worker with a small threshold and a short limit."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.delivery_helpers import deliveries, endpoint
from tests.integration.stacks import Api, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.receivers import Receiver, always, texts, wait_delivered

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


def test_the_circuit_opens_stops_hammering_then_a_probe_closes_it(
    touchy: Api, receiver: Receiver
) -> None:
    receiver.behaviour = always(500)
    # Long enough that no delivery reaches its last attempt, which goes out whatever the
    # circuit says, before the test is done.
    channel = touchy.echo_channel(receiver.url, retrySchedule=[0] + [0.1] * 49)
    conversations = ["a", "b", "c", "d"]
    for conversation in conversations:
        touchy.send(channel, conversation, "hi")

    wait_until(lambda: endpoint(touchy, channel["id"])["state"] == "circuit_open", what="open")
    wait_until(lambda: len(receiver.hits) >= 5, what="a probe after the cool-down")
    first_probe = sorted(receiver.hits, key=lambda hit: hit.at)[4]
    receiver.behaviour = always(200)
    wait_delivered(receiver, 4, "every reply once it is closed")

    hits = sorted(receiver.hits, key=lambda hit: hit.at)
    opened_at = hits[2].at  # the third failure in a row opened it
    # Without the circuit, each of the four would have been retried every 100 ms.
    during = [hit for hit in hits if opened_at < hit.at < first_probe.at]
    assert len(during) <= 1  # at most an attempt that began before it opened
    assert first_probe.at - opened_at >= COOLDOWN * 0.9
    probe_gaps = [b.at - a.at for a, b in itertools.pairwise(hits[4:])]
    assert probe_gaps and probe_gaps[0] >= COOLDOWN * 1.5  # the failed probe doubled it
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
