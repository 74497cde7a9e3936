"""Dead letters by endpoint and time range, listed and replayed through the API and the CLI."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import requests

from broker.core import clock
from tests.command_line import switchboard
from tests.integration.delivery_helpers import dead_letters
from tests.integration.stacks import Api, stack_env
from tests.polling import wait_until
from tests.receivers import ReceiverFactory, always, texts, wait_delivered


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return switchboard("dlq", *args, env={**os.environ, **stack_env()})


def kill_some(api: Api, channel: dict[str, Any], conversation: str, count: int) -> list[str]:
    before = {item["id"] for item in dead_letters(api, endpointId=channel["id"])}
    for n in range(count):
        api.send(channel, conversation, f"{conversation} {n}")

    def dead() -> list[str]:
        now = {item["id"] for item in dead_letters(api, endpointId=channel["id"])}
        return sorted(now - before) if len(now - before) == count else []

    return wait_until(dead, what=f"{count} dead letters")


def test_dead_letters_by_endpoint_and_time_range_through_the_api(
    api: Api, make_receiver: ReceiverFactory
) -> None:
    broken_a = make_receiver(always(500))
    broken_b = make_receiver(always(500))
    a = api.echo_channel(broken_a.url, retrySchedule=[0])
    b = api.echo_channel(broken_b.url, retrySchedule=[0])
    early_a = kill_some(api, a, "early", 2)
    kill_some(api, b, "early", 1)
    middle = clock.iso(clock.now())
    wait_until(lambda: clock.now() > clock.parse_iso(middle) + 0.01)
    late_a = kill_some(api, a, "late", 2)

    # The stack is shared with other tests, whose dead letters may come in meanwhile: only
    # this test's endpoints are counted.
    ours = {a["id"], b["id"]}

    def listed(**filters: str) -> list[str]:
        return sorted(i["id"] for i in dead_letters(api, **filters) if i["endpointId"] in ours)

    assert len(listed()) == 5
    assert listed(endpointId=a["id"]) == sorted(early_a + late_a)
    assert listed(endpointId=a["id"], until=middle) == early_a
    assert listed(since=middle) == late_a
    assert api.get("/v1/dead-letters", params={"since": "yesterday"}).status_code == 422
    page = api.get("/v1/dead-letters", params={"endpointId": a["id"], "limit": "2"}).json()
    assert page["total"] == 4 and len(page["items"]) == 2

    broken_a.behaviour = always(200)
    answer = api.post("/v1/dead-letters/replay", json={"endpointId": a["id"], "since": middle})
    assert answer.status_code == 202 and answer.json() == {"replayed": 2, "matched": 2}
    wait_delivered(broken_a, 2, "the late replays")
    assert {hit.webhook_id for hit in broken_a.delivered()} == set(late_a)
    assert sorted(i["id"] for i in dead_letters(api, endpointId=a["id"])) == early_a

    one = api.post(f"/v1/deliveries/{early_a[0]}/replay")
    assert one.status_code == 202 and one.json() == {"id": early_a[0], "replayed": True}
    wait_delivered(broken_a, 3, "the single replay")
    assert broken_a.delivered()[-1].webhook_id == early_a[0]
    assert api.post("/v1/deliveries/msg_nope/replay").status_code == 404
    assert len(listed()) == 2  # early_a[1] and b's

    # A chunked body is read as one with a length: its filters hold.
    def chunked(body: bytes) -> requests.Response:
        return requests.post(
            api.base + "/v1/dead-letters/replay",
            headers={**api.admin, "Content-Type": "application/json"},
            data=iter([body]),
            timeout=10,
        )

    assert chunked(b'{"endpointId": "ch_nope"}').status_code == 404
    assert chunked(b"not json").status_code == 400
    future = chunked(b'{"endpointId": "%s", "since": "2099-01-01T00:00:00Z"}' % b["id"].encode())
    assert future.status_code == 202 and future.json() == {"replayed": 0, "matched": 0}
    assert len(listed()) == 2


def test_a_bulk_replay_sends_a_conversations_dead_letters_in_the_order_they_were_made(
    api: Api, make_receiver: ReceiverFactory
) -> None:
    receiver = make_receiver(always(500))
    channel = api.echo_channel(receiver.url, retrySchedule=[0])
    made = kill_some(api, channel, "order", 3)
    first = next(
        i
        for i in dead_letters(api, endpointId=channel["id"])
        if i["id"] in made and i["body"]["message"]["text"] == "You said: order 0"
    )["id"]
    # Replayed alone while the endpoint still fails, the first dies again, after the others.
    assert api.post(f"/v1/deliveries/{first}/replay").status_code == 202

    def died_again() -> bool:
        found = api.get(f"/v1/deliveries/{first}").json()
        return found["status"] == "dead" and len(found["attempts"]) == 2

    wait_until(died_again, what="the first to die again")
    receiver.behaviour = always(200)
    answer = api.post("/v1/dead-letters/replay", json={"endpointId": channel["id"]})
    assert answer.json() == {"replayed": 3, "matched": 3}
    delivered = wait_delivered(receiver, 3, "the replays")
    assert texts(delivered) == [f"You said: order {n}" for n in range(3)]


def test_dead_letters_through_the_cli(api: Api, make_receiver: ReceiverFactory) -> None:
    broken = make_receiver(always(500))
    other = make_receiver(always(500))
    channel = api.echo_channel(broken.url, retrySchedule=[0])
    elsewhere = api.echo_channel(other.url, retrySchedule=[0])
    first = kill_some(api, channel, "cli", 3)
    kill_some(api, elsewhere, "cli", 1)
    middle = clock.iso(clock.now())
    wait_until(lambda: clock.now() > clock.parse_iso(middle) + 0.01)
    later = kill_some(api, channel, "cli-late", 2)

    listed = cli("list", "--endpoint", channel["id"])
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[-1] == "5 dead letter(s)"
    assert {line.split()[0] for line in lines[:-1]} == set(first + later)
    assert all("attempts=1  last=500" in line for line in lines[:-1])
    assert cli("list", "--until", middle).stdout.splitlines()[-1] == "4 dead letter(s)"
    assert cli("list", "--since", "not a time").returncode == 2

    broken.behaviour = always(200)
    replayed = cli("replay", "--endpoint", channel["id"], "--until", middle)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == "3 of 3 deliveries queued again"
    assert "replaying " in replayed.stderr and " 3/3" in replayed.stderr  # the progress bar
    wait_delivered(broken, 3, "the replays")
    assert {hit.webhook_id for hit in broken.delivered()} == set(first)

    by_id = cli("replay", later[0], "msg_nope", later[0])  # an id given twice counts once
    assert by_id.stdout.strip() == "1 of 2 deliveries queued again"
    assert "no delivery 'msg_nope'" in by_id.stderr and by_id.returncode == 1
    wait_delivered(broken, 4, "the replay by id")
    assert cli("list").stdout.splitlines()[-1] == "2 dead letter(s)"
    # A delivery that was delivered is not a dead letter: it is not sent again.
    again = cli("replay", first[0])
    assert again.stdout.strip() == "0 of 1 deliveries queued again" and again.returncode == 1
    assert "is not a dead letter" in again.stderr
    assert len(broken.delivered()) == 4

    refused = [
        cli("replay", later[1], "--endpoint", channel["id"]),
        cli("list", "--since", "2026-12-02T00:00:00Z", "--until", "2026-12-01T00:00:00Z"),
        cli("replay", "--since", "2026-12-02T00:00:00Z", "--until", "2026-12-01T00:00:00Z"),
        cli("replay", "--endpoint", "ch_nope"),
        cli("list", "--endpoint", "ch_nope"),
    ]
    assert [answer.returncode for answer in refused] == [2] * 5, [a.stderr for a in refused]
    assert "not both" in refused[0].stderr
    assert "--since must not come after --until" in refused[1].stderr
    assert "ch_nope" in refused[3].stderr
    assert len(broken.delivered()) == 4
