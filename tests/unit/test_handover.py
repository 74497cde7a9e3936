"""Human handover against fakeredis: events, the offload's answer, pause, hand-back, timers."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from broker.channels.channel import Channel
from broker.conversations import agent_actions, conversation_store, handover, scheduler, turns
from broker.conversations.conversation import (
    Conversation,
    ConversationMeta,
    HandoverState,
    index_member,
)
from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.errors import Conflict
from broker.core.settings import Settings
from broker.delivery import offloading, replay
from broker.delivery.http_client import AttemptResult
from broker.delivery.records import queue_ref
from tests.conversations import new_channel, read_meta, user_says
from tests.delivery_work import work_queue
from tests.fakes import RecordingSender, ScriptedClient

TAKEN = json.dumps({"offloadSuccess": True, "pauseBot": True})


@dataclass
class Desk:
    """An echo bot with a channel and an offloading integration, and user u1's conversation."""

    r: Redis
    settings: Settings
    channel: Channel
    conversation_key: str
    sender: RecordingSender = field(default_factory=RecordingSender)

    @property
    def bot_id(self) -> str:
        return self.channel.bot_id

    @property
    def member(self) -> str:
        """u1's conversation in the bot's indexes."""
        return index_member(self.channel.id, "u1")

    @property
    def offloading(self) -> str:
        return offloading.endpoint_id(self.bot_id)

    def say(self, text: str | None = None, **extra: Any) -> None:
        user_says(self.r, self.settings, self.sender, self.channel, text, **extra)

    def turn(self) -> int:
        return turns.run_pending(self.r, self.settings, self.sender, self.conversation_key)

    def bodies(self, endpoint_id: str) -> list[dict[str, Any]]:
        """Everything queued for an endpoint, delivered or not, oldest first."""
        found = self.r.zrange(keys.endpoint_deliveries(endpoint_id), 0, -1)
        records = [self.r.hgetall(keys.delivery(self.conversation_key, d)) for d in found]
        return [
            {"kind": rec["kind"], **json.loads(rec["body"])}
            for rec in sorted(records, key=lambda rec: (float(rec["createdAt"]), rec["id"]))
        ]

    def texts(self) -> list[str]:
        return [b["message"].get("text", "") for b in self.bodies(self.channel.id)]

    def events(self) -> list[dict[str, Any]]:
        return self.bodies(self.offloading)

    def answer_offload(self, *results: AttemptResult) -> ScriptedClient:
        """Work the offloading queue with scripted answers; returns what it was sent."""
        client = ScriptedClient(*results)
        ref = queue_ref(self.conversation_key, self.offloading)
        work_queue(self.r, self.settings, client, ref)
        return client

    def meta(self) -> ConversationMeta:
        return read_meta(self.r, self.conversation_key)


@pytest.fixture
def desk(fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Desk:
    monkeypatch.setattr(offloading, "health_check", lambda *args: None)
    channel = new_channel(fake_redis, settings)
    offloading.configure(fake_redis, settings, channel.bot_id, "http://127.0.0.1:9/desk", "vt-123")
    return Desk(
        fake_redis,
        settings,
        channel,
        ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1"),
    )


def _users(event: dict[str, Any]) -> list[str]:
    return [m["message"].get("text", "") for m in event["messages"] if m["actor"] == "user"]


def test_a_turn_sends_one_messages_event_with_the_user_and_bot_messages(desk: Desk) -> None:
    desk.say()
    desk.say("hello", sessionData={"plan": "gold"})
    desk.turn()

    (event,) = desk.events()
    assert {k: event[k] for k in ("kind", "event", "type", "channel", "sessionId", "version")} == {
        "kind": "messages",
        "event": "messages",
        "type": "messages",
        "channel": "webhook",
        "sessionId": "u1",
        "version": "LIVE",
    }
    assert event["botId"] == desk.bot_id and event["timestamp"].endswith("Z")
    assert event["channelId"] == desk.channel.id  # an agent's action names it
    assert [m["actor"] for m in event["messages"]] == ["user", "bot", "user", "bot"]
    intro, _, text, reply = event["messages"]
    assert intro["message"]["messageType"] == "intro"
    assert text["message"] == {
        "messageType": "text",
        "channelType": "webhook",
        "sender": {"id": "u1", "botId": desk.bot_id},
        "timestamp": text["message"]["timestamp"],
        "id": text["message"]["id"],
        "text": "hello",
    }
    assert reply["message"] == {"text": "You said: hello"}


def test_no_events_without_an_offloading_integration(desk: Desk) -> None:
    offloading.remove(desk.r, desk.bot_id)
    desk.say("human")
    desk.turn()
    assert desk.events() == []
    assert desk.texts() == ["No agent is available right now."]


def test_an_offload_sends_the_whole_transcript_and_later_messages_wait(desk: Desk) -> None:
    desk.say()
    desk.turn()
    desk.say("human")
    desk.say("are you there?")
    desk.turn()

    first, second, offload = desk.events()
    assert (first["kind"], second["kind"], offload["kind"]) == ("messages", "messages", "offload")
    assert _users(second) == ["human"]
    assert offload["event"] == offload["type"] == "offload"
    assert offload["payload"] == {"reason": "user asked"}
    assert [m["actor"] for m in offload["transcript"]] == ["user", "bot", "user"]
    assert offload["transcript"][2]["message"]["text"] == "human"
    meta = desk.meta()
    assert meta.handover.offload_pending.startswith("msg_")
    assert desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|offload") is not None
    # The message after the offload waits, unanswered, for the answer.
    assert desk.r.llen(keys.conversation_inbox(desk.conversation_key)) == 1
    assert desk.turn() == 0
    assert desk.texts() == ["Hello! I repeat what you say."]
    assert not desk.r.exists(keys.conversation_pending(desk.conversation_key))


def test_the_offload_goes_to_the_api_url_and_its_end_signals_the_conversation(desk: Desk) -> None:
    desk.say("human")
    desk.turn()
    offload_id = desk.meta().handover.offload_pending
    record = desk.r.hgetall(keys.delivery(desk.conversation_key, offload_id))
    assert record["notify"] == "1"
    expires = float(record["expiresAt"]) - float(record["createdAt"])
    assert expires == pytest.approx(desk.settings.offload_timeout, abs=0.1)

    client = desk.answer_offload(AttemptResult(200, 1), AttemptResult(200, 1, response=TAKEN))

    assert [sent.url for sent in client.sent] == [
        "http://127.0.0.1:9/desk?challenge.verifyToken=vt-123"
    ] * 2
    (signal,) = desk.r.lrange(keys.conversation_signals(desk.conversation_key), 0, -1)
    assert json.loads(signal) == {
        "kind": "delivery",
        "deliveryId": offload_id,
        "deliveryKind": "offload",
        "delivered": True,
        "statusCode": 200,
        "response": TAKEN,
        "error": None,
    }
    assert desk.r.zscore(keys.TURNS, desk.conversation_key) is not None


def test_the_answer_pauses_the_bot_and_the_waiting_messages_go_to_the_agent(desk: Desk) -> None:
    desk.say("human")
    desk.turn()
    desk.say("still there?", sessionData={"email": "a@b.c"})
    desk.turn()
    desk.answer_offload(AttemptResult(200, 1), AttemptResult(200, 1, response=TAKEN))
    # The answer woke the turn: the conversation is on the ready list.
    assert desk.r.lrange(keys.READY, 0, -1) == [desk.conversation_key]
    assert desk.turn() == 1

    meta = desk.meta()
    assert meta.handover.paused and meta.handover.offload_pending == ""
    assert desk.texts() == []  # the bot said nothing to the user
    assert _users(desk.events()[-1]) == ["still there?"]
    assert meta.memory.variables["email"] == "a@b.c"
    assert desk.r.zscore(keys.bot_paused(desk.bot_id, "LIVE"), desk.member) is not None
    assert desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|resume") is not None
    assert desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|offload") is None
    listed = conversation_store.list_page(desk.r, desk.bot_id, "LIVE", 0, 10, paused=True)
    assert [(i["sessionId"], i["paused"]) for i in listed.items] == [("u1", True)]
    others = conversation_store.list_page(desk.r, desk.bot_id, "LIVE", 0, 10, paused=False)
    assert others == ([], 0, False)

    desk.say("hello agent")
    desk.turn()
    assert desk.texts() == []
    assert _users(desk.events()[-1]) == ["hello agent"]


def test_an_answer_longer_than_the_log_keeps_is_read_whole(desk: Desk) -> None:
    desk.say("human")
    desk.turn()
    long = json.dumps({"notes": "x" * 6000, "offloadSuccess": True, "pauseBot": True}).encode()
    excerpt = long[:4096].decode()
    desk.answer_offload(AttemptResult(200, 1), AttemptResult(200, 1, response=excerpt, body=long))
    desk.turn()
    assert desk.meta().handover.paused
    assert desk.texts() == []


@pytest.mark.parametrize(
    "answer",
    [
        AttemptResult(200, 1, response=json.dumps({"offloadSuccess": False, "pauseBot": True})),
        AttemptResult(200, 1, response="<html>ok</html>"),
        AttemptResult(200, 1, response=json.dumps({"offloadSuccess": "yes"})),
        AttemptResult(200, 1, response=json.dumps({"offloadSuccess": True, "pauseBot": 1})),
        AttemptResult(200, 1, response="[true]"),
    ],
    ids=["refused", "not-json", "malformed", "bad-pause", "not-an-object"],
)
def test_a_refused_or_malformed_answer_goes_to_the_failure_state(
    desk: Desk, answer: AttemptResult
) -> None:
    desk.say("human")
    desk.turn()
    desk.say("hello?")
    desk.answer_offload(AttemptResult(200, 1), answer)
    desk.turn()

    assert desk.texts() == ["No agent is available right now.", "You said: hello?"]
    meta = desk.meta()
    assert not meta.handover.paused and meta.handover.offload_pending == ""
    assert desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|offload") is None
    last = desk.events()[-1]
    assert [m["actor"] for m in last["messages"]] == ["bot", "user", "bot"]


def test_an_offload_that_finally_fails_goes_to_the_failure_state(desk: Desk) -> None:
    desk.say("human")
    desk.turn()
    failing = [AttemptResult(500, 1, response="down")] * 5
    desk.answer_offload(AttemptResult(200, 1), *failing)  # messages event, then the offload
    offload_id = desk.meta().handover.offload_pending
    for _ in range(len(desk.settings.retry_schedule)):
        desk.r.hset(keys.delivery(desk.conversation_key, offload_id), "nextAttemptAt", "0")
        desk.answer_offload(*failing)
    assert desk.r.hget(keys.delivery(desk.conversation_key, offload_id), "status") == "dead"
    desk.turn()
    assert desk.texts() == ["No agent is available right now."]


def test_an_offload_to_a_disabled_endpoint_fails_at_once(desk: Desk) -> None:
    from broker.delivery import health

    health.disable(desk.r, desk.offloading)
    desk.say("human")
    desk.turn()
    client = desk.answer_offload()
    assert client.sent == []
    desk.turn()
    assert desk.texts() == ["No agent is available right now."]
    # The `messages` events wait for the operator; the offload does not.
    assert desk.r.sismember(
        keys.endpoint_parked(desk.offloading), queue_ref(desk.conversation_key, desk.offloading)
    )


def test_an_expired_offload_is_dead_lettered_and_not_replayed(desk: Desk) -> None:
    desk.say("human")
    desk.turn()
    desk.answer_offload(AttemptResult(500, 1))  # the messages event fails: the offload waits
    offload_id = desk.meta().handover.offload_pending
    desk.r.hset(
        keys.delivery(desk.conversation_key, offload_id), "expiresAt", repr(clock.now() - 1)
    )
    first = desk.bodies(desk.offloading)[0]
    assert first["kind"] == "messages"
    messages_id = desk.r.lindex(keys.fifo(desk.conversation_key, desk.offloading), 0)
    assert messages_id is not None
    desk.r.hset(keys.delivery(desk.conversation_key, messages_id), "nextAttemptAt", "0")
    client = desk.answer_offload()
    assert [sent.document["event"] for sent in client.sent] == ["messages"]
    record = desk.r.hgetall(keys.delivery(desk.conversation_key, offload_id))
    assert record["status"] == "dead"
    (attempt,) = desk.r.lrange(keys.delivery_attempts(desk.conversation_key, offload_id), 0, -1)
    assert json.loads(attempt)["error"] == (
        "expired before any attempt was recorded: the deliveries before it in its queue held "
        "it back, or a stopped worker cut its attempt short"
    )
    desk.turn()
    assert desk.texts() == ["No agent is available right now."]
    with pytest.raises(Conflict, match="expired"):  # nothing waits for its answer any more
        replay.replay(desk.r, offload_id)


def test_a_late_answer_fails_the_offload_by_its_timer(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk.settings = desk.settings.with_changes(offload_timeout=0.0)
    desk.say("human")
    desk.turn()
    assert scheduler.fire_timers(desk.r, desk.settings, desk.sender) == 1
    signal = desk.r.lindex(keys.conversation_signals(desk.conversation_key), 0)
    assert signal is not None and json.loads(signal) == {
        "kind": "timer",
        "name": "offload",
    }
    desk.turn()
    assert desk.texts() == ["No agent is available right now."]
    assert desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|offload") is None
    # The answer that comes after all is not acted on.
    desk.settings = desk.settings.with_changes(offload_timeout=60.0)
    desk.answer_offload(AttemptResult(200, 1), AttemptResult(200, 1, response=TAKEN))
    desk.turn()
    assert not desk.meta().handover.paused


def _paused(desk: Desk) -> Conversation:
    desk.say("human")
    desk.turn()
    desk.answer_offload(AttemptResult(200, 1), AttemptResult(200, 1, response=TAKEN))
    desk.turn()
    assert desk.meta().handover.paused
    return conversation_store.find(desk.r, desk.bot_id, "LIVE", "u1")


def test_agent_messages_reach_the_channel_and_the_offloading_webhook(desk: Desk) -> None:
    conversation = _paused(desk)
    answer = agent_actions.act(
        desk.r, desk.settings, desk.sender, conversation, messages=[{"text": "Ann here"}]
    )
    assert desk.texts() == ["Ann here"]
    assert answer["deliveryIds"] == [
        desk.r.lindex(keys.fifo(desk.conversation_key, desk.channel.id), -1)
    ]
    last = desk.events()[-1]
    assert [(m["actor"], m["sentByAgent"], m["message"]) for m in last["messages"]] == [
        ("bot", True, {"text": "Ann here"})
    ]


def test_hand_back_tells_the_offloading_webhook_and_the_bot_answers_again(desk: Desk) -> None:
    conversation = _paused(desk)
    agent_actions.act(
        desk.r, desk.settings, desk.sender, conversation, messages=[], resume=True, go_to="welcome"
    )

    last = desk.events()[-1]
    assert [m["message"] for m in last["messages"]] == [
        {"type": "event", "name": "bot_resumed", "data": {"by": "agent"}},
        {"text": "Hello! I repeat what you say."},
    ]
    assert desk.r.zscore(keys.bot_paused(desk.bot_id, "LIVE"), desk.member) is None
    assert desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|resume") is None
    desk.say("back?")
    desk.turn()
    assert desk.texts()[-1] == "You said: back?"


def test_with_its_offloading_integration_removed_the_bot_answers_again(desk: Desk) -> None:
    _paused(desk)
    offloading.remove(desk.r, desk.bot_id)

    desk.say("anyone?")
    desk.turn()

    assert desk.texts()[-1] == "You said: anyone?"
    assert not desk.meta().handover.paused
    assert desk.r.zscore(keys.bot_paused(desk.bot_id, "LIVE"), desk.member) is None


def test_removing_the_integration_gives_paused_conversations_back_at_once(desk: Desk) -> None:
    _paused(desk)
    offloading.remove(desk.r, desk.bot_id)
    conversation_store.give_paused_back(desk.r, desk.settings, desk.sender, desk.bot_id)

    assert not desk.meta().handover.paused  # at once, before any turn
    assert desk.r.zscore(keys.bot_paused(desk.bot_id, "LIVE"), desk.member) is None
    assert desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|resume") is None
    # An integration configured again before any turn ran finds it the bot's.
    offloading.configure(desk.r, desk.settings, desk.bot_id, "http://127.0.0.1:9/desk", "vt")
    desk.say("hello again")
    desk.turn()
    assert desk.texts()[-1] == "You said: hello again"


def test_removing_the_integration_fails_an_offload_still_awaited_at_once(desk: Desk) -> None:
    desk.say("human")
    desk.turn()
    desk.say("still there?")  # waits for the offload's answer
    desk.turn()
    woken = len(desk.sender.turns)

    unanswered = offloading.remove(desk.r, desk.bot_id)
    conversation_store.give_up_offloads(desk.r, desk.settings, desk.sender, unanswered)

    assert unanswered == [desk.meta().handover.offload_pending]
    assert desk.sender.turns[woken:] == [desk.conversation_key]  # not when its timer fires
    desk.turn()
    assert desk.texts()[-2:] == ["No agent is available right now.", "You said: still there?"]
    assert not desk.meta().handover.offload_pending
    assert desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|offload") is None


def test_removing_the_integration_gives_up_only_offloads_still_awaited(desk: Desk) -> None:
    desk.say("human")
    desk.turn()
    desk.answer_offload(AttemptResult(200, 1, response=TAKEN))
    desk.turn()

    assert offloading.remove(desk.r, desk.bot_id) == []


def test_messages_that_waited_for_the_offload_are_answered_after_a_hand_back(desk: Desk) -> None:
    desk.say("human")
    desk.turn()
    desk.say("k1")  # waits for the offload's answer
    desk.turn()
    conversation = conversation_store.find(desk.r, desk.bot_id, "LIVE", "u1")
    woken = len(desk.sender.turns)
    agent_actions.act(desk.r, desk.settings, desk.sender, conversation, messages=[], resume=True)
    # Woken: the offload's answer, which would have woken it, will not come now.
    assert desk.sender.turns[woken:] == [desk.conversation_key]
    desk.turn()
    assert desk.texts()[-1] == "You said: k1"


def test_messages_that_came_while_paused_stay_the_agent_s_after_a_hand_back(desk: Desk) -> None:
    conversation = _paused(desk)
    desk.say("for the agent")  # acknowledged while paused; its turn has not run yet
    agent_actions.act(desk.r, desk.settings, desk.sender, conversation, messages=[], resume=True)
    desk.say("for the bot")
    desk.turn()

    assert desk.texts()[-1] == "You said: for the bot"
    assert "You said: for the agent" not in desk.texts()
    messages = [event for event in desk.events() if event["kind"] == "messages"]
    users = [text for event in messages for text in _users(event)]
    assert users[-2:] == ["for the agent", "for the bot"]  # the desk sees both


def test_a_silent_agent_hands_back_by_itself(desk: Desk) -> None:
    desk.settings = desk.settings.with_changes(resume_after=0.0)
    _paused(desk)
    scheduler.fire_timers(desk.r, desk.settings, desk.sender)
    desk.turn()
    assert not desk.meta().handover.paused
    notice = desk.events()[-1]["messages"][-1]
    assert notice["actor"] == "bot"
    assert notice["message"] == {
        "type": "event",
        "name": "bot_resumed",
        "data": {"by": "timeout", "agentSilentSeconds": 0.0},
    }
    assert desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|resume") is None
    desk.say("hi")
    desk.turn()
    assert desk.texts()[-1] == "You said: hi"


def test_an_agent_who_speaks_pushes_the_auto_resume_back(desk: Desk) -> None:
    desk.settings = desk.settings.with_changes(resume_after=3600.0)
    conversation = _paused(desk)
    before = desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|resume")
    agent_actions.act(
        desk.r, desk.settings, desk.sender, conversation, messages=[{"text": "one moment"}]
    )
    after = desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|resume")
    assert before is not None and after is not None and after > before
    # A timer that fires early (another scheduler's clock) is put back, not acted on.
    desk.r.zadd(keys.TIMERS, {f"{desk.conversation_key}|resume": 0})
    scheduler.fire_timers(desk.r, desk.settings, desk.sender)
    desk.turn()
    assert desk.meta().handover.paused
    assert desk.r.zscore(keys.TIMERS, f"{desk.conversation_key}|resume") == pytest.approx(
        after, abs=1
    )


@pytest.mark.parametrize(
    ("signal", "success", "pause"),
    [
        ({"delivered": True, "response": TAKEN}, True, True),
        ({"delivered": True, "response": '{"offloadSuccess": true}'}, True, False),
        (
            {"delivered": True, "response": '{"offloadSuccess": true, "pauseBot": null}'},
            True,
            False,
        ),
        ({"delivered": False, "error": "timeout after 10 s"}, False, False),
        ({"delivered": True, "response": None}, False, False),
    ],
)
def test_reading_an_offload_answer(signal: dict[str, Any], success: bool, pause: bool) -> None:
    answer = handover.read_answer(signal)
    assert (answer.success, answer.pause) == (success, pause)
    assert bool(answer.reason) is not success


def test_the_timers_of_a_deleted_conversation_go_with_it(desk: Desk) -> None:
    desk.settings = desk.settings.with_changes(resume_after=0.0)
    _paused(desk)
    desk.r.delete(keys.conversation_meta(desk.conversation_key))
    scheduler.fire_timers(desk.r, desk.settings, desk.sender)
    desk.turn()
    assert desk.r.zcard(keys.TIMERS) == 0
    assert not desk.r.exists(keys.conversation_signals(desk.conversation_key))
    assert not desk.r.exists(keys.conversation_pending(desk.conversation_key))


def test_an_answer_cut_at_the_read_cap_says_so() -> None:
    cut = json.dumps({"offloadSuccess": True, "notes": "x" * 70_000})[: 64 * 1024]
    found = handover.read_answer({"delivered": True, "response": cut})
    assert not found.success and found.reason == "the answer is over 65,536 bytes"
    assert handover.read_answer({"delivered": True, "response": "<html>"}).reason == (
        "the answer is not JSON"
    )


def test_handover_lines_name_the_session_bot_and_channel_not_the_conversation_key(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    conversation = Conversation.of("bot_1", "LIVE", "ch_1", "u1")
    state = HandoverState(offload_pending="msg_9", offload_pending_at=clock.now() - 10**6)
    said = handover.Handover(settings, conversation, state)
    with caplog.at_level(logging.INFO, logger=handover.__name__):
        said.settle({"kind": "delivery", "deliveryId": "msg_9", "delivered": False}, clock.now())
        said.state.offload_pending = "msg_10"
        said.settle({"kind": "timer", "name": handover.OFFLOAD_TIMER}, clock.now())
        said.settle({"kind": "bogus"}, clock.now())
    failed, late, unknown = caplog.records
    for line in (failed, late, unknown):
        fields = line.__dict__["switchboard_fields"]
        assert (fields["sessionId"], fields["botId"], fields["channelId"]) == (
            "u1",
            "bot_1",
            "ch_1",
        )
        assert conversation.key not in line.getMessage()
    assert failed.__dict__["switchboard_fields"]["deliveryId"] == "msg_9"
    assert late.__dict__["switchboard_fields"]["deliveryId"] == "msg_10"
