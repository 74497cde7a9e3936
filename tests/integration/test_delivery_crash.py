"""kill -9 of a worker in the middle of deliveries: another worker finishes them, at least once."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import defaultdict

import pytest

from tests.integration.stacks import OwnStack, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.receivers import Answer, Receiver


def _busy_worker(
    own: OwnStack, env: dict[str, str], receiver: Receiver, conversations: list[str], each: int
) -> subprocess.Popen[bytes]:
    """A stack of one worker, given `each` messages of every conversation: the worker."""
    own.start("web", env)
    own.start("scheduler", env)
    worker = own.start("worker", env).processes["worker"]
    own.wait_ready()
    channel = own.api.echo_channel(receiver.url)
    for n in range(each):
        for conversation in conversations:
            assert own.api.send(channel, conversation, f"{conversation} #{n}").status_code == 202
    return worker


def test_a_worker_killed_mid_delivery_loses_nothing(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> None:
    require_redis()
    receiver.behaviour = lambda hit: Answer(200, delay=0.25)
    with own_stack(tmp_path_factory.mktemp("crash") / "stack.log") as own:
        # Short claims, so that the dead worker's queues come back quickly.
        env = own.env(SWITCHBOARD_CLAIM_LEASE="1", SWITCHBOARD_TOTAL_TIMEOUT="1.5")
        conversations = [f"user-{n}" for n in range(8)]
        doomed = _busy_worker(own, env, receiver, conversations, 6)

        wait_until(lambda: len(receiver.hits) >= 12, what="the first worker to be under way")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
        in_flight_when_killed = len(receiver.hits)
        own.start("worker", env)

        expected = {f"You said: {s} #{n}" for s in conversations for n in range(6)}

        def all_arrived() -> bool:
            return {hit.body["message"]["text"] for hit in receiver.delivered()} == expected

        wait_until(all_arrived, timeout=30, what="every reply")
        assert in_flight_when_killed < len(expected)  # it was killed in the middle

        ids_by_text: dict[str, set[str]] = defaultdict(set)
        for hit in receiver.hits:
            ids_by_text[hit.body["message"]["text"]].add(hit.webhook_id)
        assert all(len(found) == 1 for found in ids_by_text.values()), ids_by_text
        for conversation in conversations:
            firsts: list[int] = []
            for hit in receiver.hits:
                if (
                    hit.body["sessionId"] == conversation
                    and hit.body["messageCounter"] not in firsts
                ):
                    firsts.append(hit.body["messageCounter"])
            assert firsts == [1, 2, 3, 4, 5, 6]
        repeats = len(receiver.hits) - len(expected)
        print(f"{repeats} repeated deliveries after kill -9")


def test_a_worker_told_to_stop_ends_its_attempts_and_hands_the_rest_back(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> None:
    """SIGTERM: what is in flight is finished and recorded (nothing is sent twice), and
    what is left goes to the next worker at once, not at the end of a 30 s claim."""
    require_redis()
    receiver.behaviour = lambda hit: Answer(200, delay=0.5)
    with own_stack(tmp_path_factory.mktemp("stopped") / "stack.log") as own:
        env = own.env(SWITCHBOARD_CLAIM_LEASE="30")
        conversations = [f"user-{n}" for n in range(20)]
        stopping = _busy_worker(own, env, receiver, conversations, 3)
        wait_until(lambda: len(receiver.hits) >= 10, what="the worker to be under way")
        stopping.terminate()
        assert stopping.wait(timeout=20) == 0
        sent_before_the_stop = len(receiver.hits)
        expected = {f"You said: {s} #{n}" for s in conversations for n in range(3)}
        assert sent_before_the_stop < len(expected)  # it stopped in the middle

        own.start("worker", env)

        def all_arrived() -> bool:
            return {hit.body["message"]["text"] for hit in receiver.delivered()} == expected

        wait_until(all_arrived, timeout=20, what="every reply, well before the claims' end")
        webhook_ids = [hit.webhook_id for hit in receiver.hits]
        assert len(webhook_ids) == len(set(webhook_ids)) == len(expected)
