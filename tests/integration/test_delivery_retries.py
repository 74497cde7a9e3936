"""Retries with real processes: a receiver that is down, flaky, busy, redirecting or broken."""

from __future__ import annotations

import itertools
import random
import threading
import time
from email.utils import formatdate
from typing import Any

from switchboard.embedded_redis import free_port
from tests.integration.delivery_helpers import attempt_times, dead_letters, deliveries, delivery
from tests.integration.stacks import Api
from tests.polling import wait_until
from tests.receivers import (
    Answer,
    Hit,
    Receiver,
    always,
    of_conversation,
    texts,
    wait_delivered,
)


def test_a_receiver_down_then_up_gets_every_reply_in_order_after_the_schedule(api: Api) -> None:
    schedule = [0, 0.4, 0.8, 1.2, 1.6]
    port = free_port()
    channel = api.echo_channel(f"http://127.0.0.1:{port}/hook", retrySchedule=schedule)
    conversations = ["ann", "bob", "cy"]
    for n in range(2):
        for conversation in conversations:
            assert api.send(channel, conversation, f"{conversation} {n}").status_code == 202

    def heads_failed_twice() -> bool:
        items = deliveries(api, endpointId=channel["id"])
        failed = [item for item in items if len(item["attempts"]) >= 2]
        return len(items) == 6 and len(failed) == 3

    wait_until(heads_failed_twice, what="each session's first reply to fail twice")
    receiver = Receiver(port=port)
    try:
        wait_delivered(receiver, 6)
        for conversation in conversations:
            assert texts(of_conversation(receiver.hits, conversation)) == [
                f"You said: {conversation} 0",
                f"You said: {conversation} 1",
            ]
        # The records, not the receiver: an outcome is recorded just after the answer arrives.
        wait_until(
            lambda: (
                {i["status"] for i in deliveries(api, endpointId=channel["id"])} == {"delivered"}
            ),
            what="every record delivered",
        )
        items = deliveries(api, endpointId=channel["id"])
        retried = [item for item in items if len(item["attempts"]) > 1]
        assert len(retried) == 3  # the heads; those behind them went through at the first try
        for item in retried:
            *failed, last = item["attempts"]
            assert all(a["error"] == "connection refused" for a in failed)
            assert "statusCode" not in failed[0]
            assert last["statusCode"] == 200
            times = attempt_times(item)
            for i, gap in enumerate(b - a for a, b in itertools.pairwise(times)):
                # the schedule's delay with its ±20 % jitter, plus the scheduler's tick
                assert 0.8 * schedule[i + 1] - 0.01 <= gap <= 1.2 * schedule[i + 1] + 0.5, times
    finally:
        receiver.stop()


def test_twenty_quick_messages_through_a_flaky_receiver_arrive_complete_and_in_order(
    api: Api, receiver: Receiver
) -> None:
    rng = random.Random(20)
    lock = threading.Lock()

    def flaky(hit: Hit) -> Answer:
        with lock:
            return Answer(500 if rng.random() < 0.3 else 200)

    receiver.behaviour = flaky
    channel = api.echo_channel(receiver.url, retrySchedule=[0] + [0.05] * 11)
    for n in range(20):
        assert api.send(channel, "quick", f"m{n}").status_code == 202

    wait_delivered(receiver, 20)
    assert texts(receiver.delivered()) == [f"You said: m{n}" for n in range(20)]
    # No reply was tried before the one ahead of it had gone through.
    counters = [hit.body["messageCounter"] for hit in receiver.hits]
    assert counters == sorted(counters)
    failures = [hit for hit in receiver.hits if hit.status == 500]
    assert failures, "the receiver failed none: the test proves nothing"
    ids = [hit.webhook_id for hit in receiver.delivered()]
    assert len(set(ids)) == 20
    assert {hit.webhook_id for hit in failures} <= set(ids)  # a retry keeps its webhook-id


def test_retry_after_in_seconds_is_honoured(api: Api, receiver: Receiver) -> None:
    receiver.behaviour = lambda hit: (
        Answer(429, headers={"Retry-After": "1"}) if hit.try_number == 1 else Answer(200)
    )
    channel = api.echo_channel(receiver.url, retrySchedule=[0, 0.05, 0.05])
    api.send(channel, "patient", "hi")

    wait_until(receiver.delivered, what="the reply")
    first, second = receiver.hits
    assert second.webhook_id == first.webhook_id
    assert 1.0 <= second.at - first.at < 1.8
    (item,) = deliveries(api, endpointId=channel["id"])
    assert [a["statusCode"] for a in item["attempts"]] == [429, 200]


def test_retry_after_as_an_http_date_is_honoured(api: Api, receiver: Receiver) -> None:
    retry_at: list[float] = []

    def busy(hit: Hit) -> Answer:
        if hit.try_number > 1:
            return Answer(200)
        retry_at.append(float(int(time.time()) + 2))
        return Answer(503, headers={"Retry-After": formatdate(retry_at[0], usegmt=True)})

    receiver.behaviour = busy
    channel = api.echo_channel(receiver.url, retrySchedule=[0, 0.05, 0.05])
    api.send(channel, "patient", "hi")

    wait_until(receiver.delivered, what="the reply")
    first, second = receiver.hits
    assert retry_at[0] - 0.05 <= second.at < retry_at[0] + 0.8
    assert second.at - first.at >= 1.0


def test_a_retry_after_the_policy_cannot_use_is_ignored_and_the_schedule_ends(
    api: Api, receiver: Receiver
) -> None:
    """`Retry-After: ²` (a digit to str.isdigit, not to float) once made
    every attempt fail before it was recorded, so the delivery went out again and again.
    Now each attempt is recorded, and the schedule ends in a dead letter."""
    receiver.behaviour = always(503, headers={"Retry-After": "\u00b2"})
    channel = api.echo_channel(receiver.url, retrySchedule=[0, 0.05, 0.05])
    api.send(channel, "patient", "hi")
    (dead,) = wait_until(lambda: dead_letters(api, endpointId=channel["id"]), what="dead")
    assert [a["statusCode"] for a in dead["attempts"]] == [503, 503, 503]
    assert len(receiver.hits) == 3


def test_a_redirect_is_not_followed_and_counts_as_a_failure(api: Api, receiver: Receiver) -> None:
    elsewhere = f"http://127.0.0.1:{receiver.port}/elsewhere"
    receiver.behaviour = lambda hit: (
        Answer(200) if hit.path == "/elsewhere" else Answer(302, headers={"Location": elsewhere})
    )
    channel = api.echo_channel(receiver.url, retrySchedule=[0, 0.05, 0.05])
    api.send(channel, "moved", "hi")

    def dead() -> list[dict[str, Any]]:
        return deliveries(api, status="dead", endpointId=channel["id"])

    (item,) = wait_until(dead, what="the delivery to die")
    assert [hit.path for hit in receiver.hits] == ["/hook"] * 3
    assert [a["statusCode"] for a in item["attempts"]] == [302] * 3
    assert all(a["error"] == f"redirect to {elsewhere} not followed" for a in item["attempts"])


def test_an_always_failing_endpoint_ends_in_dead_letters_and_replay_delivers_when_fixed(
    api: Api, receiver: Receiver
) -> None:
    receiver.behaviour = always(500, body=b"broken")
    channel = api.echo_channel(receiver.url, retrySchedule=[0, 0.05, 0.1])
    api.send(channel, "doomed", "one")
    api.send(channel, "doomed", "two")
    api.send(channel, "other", "three")

    def all_dead() -> list[dict[str, Any]]:
        items = dead_letters(api, endpointId=channel["id"])
        return items if len(items) == 3 else []

    dead = wait_until(all_dead, what="3 dead letters")
    assert len(receiver.hits) == 9  # three attempts each, as the schedule says
    # "two" was not tried before "one" was dead.
    doomed = texts(of_conversation(receiver.hits, "doomed"))
    assert doomed == ["You said: one"] * 3 + ["You said: two"] * 3
    for item in dead:
        assert item["status"] == "dead" and "deadAt" in item
        assert [a["response"] for a in item["attempts"]] == ["broken"] * 3

    receiver.behaviour = always(200)
    answer = api.post("/v1/dead-letters/replay", json={"endpointId": channel["id"]})
    assert answer.status_code == 202
    assert answer.json() == {"replayed": 3, "matched": 3}

    wait_delivered(receiver, 3, "the replayed replies")
    assert texts(of_conversation(receiver.delivered(), "doomed")) == [
        "You said: one",
        "You said: two",
    ]
    assert {hit.webhook_id for hit in receiver.delivered()} == {item["id"] for item in dead}
    assert api.get("/v1/dead-letters", params={"endpointId": channel["id"]}).json()["total"] == 0
    wait_until(
        lambda: all(delivery(api, item["id"])["status"] == "delivered" for item in dead),
        what="the replayed records delivered",
    )
    for item in dead:
        again = delivery(api, item["id"])
        assert len(again["attempts"]) == 4  # the log keeps the attempts before the replay
