"""An endpoint whose own time limit is longer than the claim on its queue lasts by default:
while its slow answer is awaited, no other attempt of the same delivery goes out, and the
answer, when it comes, is recorded."""

from __future__ import annotations

import pytest

from tests.integration.stacks import own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.receivers import Answer, Hit, Receiver


def test_a_slow_answer_within_the_endpoints_own_time_limit_is_awaited_alone(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> None:
    require_redis()

    def slow_first(hit: Hit) -> Answer:
        return Answer(200, delay=4.0 if hit.try_number == 1 else 0.0)

    receiver.behaviour = slow_first
    with own_stack(tmp_path_factory.mktemp("long") / "stack.log") as own:
        # Claims last 1 + 1 s by default; this endpoint may take 8 s.
        env = own.env(
            SWITCHBOARD_CLAIM_LEASE="1",
            SWITCHBOARD_CONNECT_TIMEOUT="0.5",
            SWITCHBOARD_TOTAL_TIMEOUT="1",
        )
        for role in ("web", "worker", "scheduler"):
            own.start(role, env)
        own.wait_ready()
        channel = own.api.echo_channel(receiver.url, totalTimeout=8)
        assert own.api.send(channel, "ann", "slow").status_code == 202
        assert own.api.send(channel, "ann", "next").status_code == 202

        wait_until(lambda: len(receiver.delivered()) == 2, timeout=20, what="both replies")
        texts = [hit.body["message"]["text"] for hit in receiver.hits]
        assert texts == ["You said: slow", "You said: next"]
        found = own.api.get("/v1/deliveries", params={"sessionId": "ann"}).json()["items"]
        assert [len(item["attempts"]) for item in found] == [1, 1]
