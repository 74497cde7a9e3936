"""Scripts whose answer was lost on the way back. A Redis Cluster's client sends a command
again when that happens (a master failing over closes its connections): the scripts it
sends so must have their effect once, and answer as they did the first time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from broker.conversations import ingress
from broker.conversations.conversation import Conversation
from broker.core import keys, scripts
from broker.core.connection import Redis
from broker.core.lean_redis import LeanPipeline, LeanRedis
from broker.core.settings import Settings
from broker.delivery import attempt_log, fanout
from broker.delivery.fanout import TurnCommit
from broker.delivery.records import Attempt, Delivery, queue_ref
from tests.conversations import new_channel, user_says
from tests.delivery_work import new_delivery
from tests.fakes import RecordingSender

EP = "ch_commit"


@pytest.fixture
def resending(r: Redis) -> Iterator[Redis]:
    """A client of the test's Redis that sends a command once more when its connection
    fails, as the cluster's does."""
    client = LeanRedis(
        connection_pool=redis.ConnectionPool(
            **{**r.connection_pool.connection_kwargs, "retry": Retry(NoBackoff(), 1)}
        )
    )
    yield client
    client.close()


@pytest.fixture
def lost(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The first script's answer is read, then lost: the connection fails. Gives the answers
    lost (to check that the test lost one)."""
    real: Any = LeanPipeline.parse_response
    answers: list[object] = []

    def answer_lost_once(self: LeanPipeline, connection: Any, command: str, **options: Any) -> Any:
        answer = real(self, connection, command, **options)
        if command == "EVALSHA" and not answers:
            answers.append(answer)
            raise redis.ConnectionError("Connection closed by server.")
        return answer

    monkeypatch.setattr(LeanPipeline, "parse_response", answer_lost_once)
    return answers


def test_a_turn_commit_is_made_once(r: Redis, resending: Redis, lost: list[object]) -> None:
    """Made twice, the turn trimmed its inbox twice, and its queue, claimed by the first run,
    was not empty to the second: the queue's entry on `sb:due` was dropped as someone
    else's, and no one worked it."""
    conversation = "c1"
    r.set(keys.conversation_lock(conversation), "t")
    r.rpush(keys.conversation_inbox(conversation), "m1", "m2", "m3")
    replies = [_reply(conversation, text) for text in ("one", "two")]
    (done,) = fanout.commit_turns(
        resending,
        Settings(),
        [TurnCommit(conversation, trim=1, deliveries=replies)],
        lock_token="t",
        claim_token="claim",
        end_turns=False,
    )
    assert lost, "no answer was lost: the test tried nothing"
    assert done == fanout.Committed(False, False, {queue_ref(conversation, EP): replies}, [])
    assert r.lrange(keys.fifo(conversation, EP), 0, -1) == [d.id for d in replies]
    assert r.lrange(keys.conversation_inbox(conversation), 0, -1) == ["m2", "m3"]
    assert r.get(keys.fifo_lock(conversation, EP)) == "claim"


def test_a_turn_commit_that_ended_its_turn_answers_the_same_when_sent_again(r: Redis) -> None:
    conversation = "c1"
    r.set(keys.conversation_lock(conversation), "t")
    commit = TurnCommit(conversation, deliveries=[_reply(conversation, "one")])

    def send() -> fanout.Committed:
        (done,) = fanout.commit_turns(
            r, Settings(), [commit], lock_token="t", claim_token="claim", end_turns=True
        )
        return done

    first = send()
    assert first.ended and not first.lost
    assert send() == first
    assert r.llen(keys.fifo(conversation, EP)) == 1


def test_an_attempt_sent_again_is_counted_once(r: Redis) -> None:
    """Counted twice, a delivery would skip a step of its retry schedule."""
    conversation = "c1"
    r.set(keys.conversation_lock(conversation), "t")
    first, second = (_reply(conversation, text) for text in ("one", "two"))
    fanout.commit_turns(
        r,
        Settings(),
        [TurnCommit(conversation, deliveries=[first, second])],
        lock_token="t",
        claim_token="claim",
        end_turns=False,
    )
    attempt = Attempt(1000.0, 12, 200, "", "ok")
    record = [
        keys.delivery(conversation, first.id),
        keys.delivery_attempts(conversation, first.id),
        keys.fifo(conversation, EP),
        keys.fifo_lock(conversation, EP),
    ]
    ending = attempt_log.delivered(Settings(), 1000.1)
    args = [first.id, attempt.to_json(), ending.fate, int(ending.ttl), "", "claim", 30_000]
    args += [keys.delivery_prefix(conversation), *ending.fields]
    answers = [scripts.run(r, "attempt_record", record, args) for _ in range(2)]
    assert answers[0] == answers[1]
    assert answers[0][:3] == [1, 0, second.id]
    assert r.hget(keys.delivery(conversation, first.id), "attemptCount") == "1"
    assert r.llen(keys.delivery_attempts(conversation, first.id)) == 1
    assert r.lrange(keys.fifo(conversation, EP), 0, -1) == [second.id]


def test_a_message_without_a_key_is_queued_once_on_a_cluster(
    r: Redis,
    settings: Settings,
    resending: Redis,
    lost: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a cluster, a message with no idempotency key is found by the id ingress gave it; the
    resend answers 202 as the first run would have, and wakes the turn (the first answer,
    which said whether to, was lost)."""
    channel = new_channel(r, settings)
    monkeypatch.setattr(ingress, "on_cluster", lambda _client: True)
    sender = RecordingSender()
    accepted = user_says(resending, settings, sender, channel, "hi")
    assert lost, "no answer was lost: the test tried nothing"
    assert accepted.queued
    key = Conversation.of(channel.bot_id, channel.version, channel.id, "u1").key
    inbox = r.lrange(keys.conversation_inbox(key), 0, -1)
    assert [json.loads(entry)["text"] for entry in inbox] == ["hi"]
    assert sender.turns == [key]
    assert 0 < r.ttl(keys.resend_guard(key, accepted.message_id)) <= 60


def _reply(conversation: str, text: str) -> Delivery:
    return new_delivery(conversation, EP, text)
