"""Dead letters by endpoint and time range, listed and replayed through the API and the CLI."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from broker.core import clock
from tests.command_line import switchboard
from tests.integration.delivery_helpers import dead_letters
from tests.integration.stacks import Api, stack_env
from tests.polling import wait_until
from tests.receivers import ReceiverFactory, always, wait_delivered


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

    by_id = cli("replay", later[0], "msg_nope")
    assert by_id.stdout.strip() == "1 of 2 deliveries queued again"
    assert "no delivery 'msg_nope'" in by_id.stderr and by_id.returncode == 1
    wait_delivered(broken, 4, "the replay by id")
    assert cli("list").stdout.splitlines()[-1] == "2 dead letter(s)"
    # A delivery that was delivered is not a dead letter: it is not sent again.
    again = cli("replay", first[0])
    assert again.stdout.strip() == "0 of 1 deliveries queued again" and again.returncode == 1
    assert "is not a dead letter" in again.stderr
    assert len(broken.delivered()) == 4
