"""Agent messages and hand-back against fakeredis: deliveries, counters, transcript, pause."""

from __future__ import annotations

from typing import Any

import pytest

from broker.channels import channel_store
from broker.channels.channel import Channel
from broker.conversations import agent_actions, conversation_store, turns
from broker.conversations.conversation import Conversation
from broker.core import ids, keys
from broker.core.connection import Redis
from broker.core.errors import Conflict, NotFound, ValidationFailed
from broker.core.locks import Lock
from broker.core.settings import Settings
from tests.conversations import new_channel, pause, queued_bodies, read_meta, user_says
from tests.fakes import RecordingSender

MENU: dict[str, Any] = {
    "startState": "welcome",
    "states": [
        {"id": "welcome", "messages": [{"text": "Hi"}]},
        {"id": "menu", "messages": [{"text": "Back with the bot. Pizza or pasta?"}]},
    ],
}


def _talked(
    r: Redis, settings: Settings, definition: dict[str, Any]
) -> tuple[Channel, Conversation]:
    """A bot whose conversation u1 said hello and got its welcome."""
    channel = new_channel(r, settings, definition, bot_name="b")
    sender = RecordingSender()
    user_says(r, settings, sender, channel)
    turns.run_pending(
        r, settings, sender, ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    )
    return channel, conversation_store.find(r, channel.bot_id, "LIVE", "u1")


def test_agent_messages_continue_the_message_counter(fake_redis: Redis, settings: Settings) -> None:
    channel, conversation = _talked(fake_redis, settings, MENU)
    sender = RecordingSender()

    answer = agent_actions.act(
        fake_redis,
        settings,
        sender,
        conversation,
        messages=[{"text": "Agent here"}, {"text": "How can I help?"}],
    )

    bodies = queued_bodies(fake_redis, conversation.key, channel.id)
    assert [b["message"] for b in bodies] == [
        {"text": "Hi"},
        {"text": "Agent here"},
        {"text": "How can I help?"},
    ]
    assert [b["messageCounter"] for b in bodies] == [1, 2, 3]
    assert bodies[1]["verifyToken"] == channel.verify_token
    assert answer["deliveryIds"] == [
        b for b in fake_redis.lrange(keys.fifo(conversation.key, channel.id), 1, -1)
    ]
    assert answer["paused"] is False


def test_agent_messages_go_out_as_written_with_no_placeholders_filled(
    fake_redis: Redis, settings: Settings
) -> None:
    channel, conversation = _talked(fake_redis, settings, MENU)
    written = [{"text": "Use {{lastMessage}} or {{nope}}"}]
    agent_actions.act(fake_redis, settings, RecordingSender(), conversation, messages=written)
    bodies = queued_bodies(fake_redis, conversation.key, channel.id)
    assert bodies[-1]["message"] == {"text": "Use {{lastMessage}} or {{nope}}"}


def test_agent_messages_are_agent_items_in_the_transcript(
    fake_redis: Redis, settings: Settings
) -> None:
    _, conversation = _talked(fake_redis, settings, MENU)
    agent_actions.act(
        fake_redis, settings, RecordingSender(), conversation, messages=[{"text": "Agent here"}]
    )
    items, total = conversation_store.transcript_page(fake_redis, conversation, 0, 50)
    assert total == 3
    assert [i["actor"] for i in items] == ["user", "bot", "agent"]
    assert items[2]["message"] == {"text": "Agent here"}


def _hand_back(
    r: Redis,
    settings: Settings,
    conversation: Conversation,
    go_to: str,
    messages: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The agent's hand-back to `go_to`, with its messages (by default one)."""
    sent = [{"text": "x"}] if messages is None else messages
    return agent_actions.act(
        r, settings, RecordingSender(), conversation, messages=sent, resume=True, go_to=go_to
    )


def test_hand_back_to_a_state_unpauses_and_sends_its_messages(
    fake_redis: Redis, settings: Settings
) -> None:
    channel, conversation = _talked(fake_redis, settings, MENU)
    pause(fake_redis, conversation.key)

    answer = _hand_back(fake_redis, settings, conversation, "menu", messages=[])

    assert answer["paused"] is False
    bodies = queued_bodies(fake_redis, conversation.key, channel.id)
    assert bodies[-1]["message"] == {"text": "Back with the bot. Pizza or pasta?"}
    assert bodies[-1]["messageCounter"] == 2
    meta = read_meta(fake_redis, conversation.key)
    assert not meta.handover.paused
    assert meta.memory.state == "menu"


def test_hand_back_to_an_unknown_state_is_refused_before_anything_is_sent(
    fake_redis: Redis, settings: Settings
) -> None:
    channel, conversation = _talked(fake_redis, settings, MENU)
    with pytest.raises(ValidationFailed) as raised:
        _hand_back(fake_redis, settings, conversation, "nowhere")
    assert raised.value.field == "goToDialogstate"
    assert len(queued_bodies(fake_redis, conversation.key, channel.id)) == 1


@pytest.mark.parametrize(
    ("state", "fault"),
    [
        ({"type": "goto", "next": "again"}, "without waiting for the user"),
        ({"say": [{"attachment": {"type": "image", "payload": {"url": "{{pic}}"}}}]}, "url"),
        ({"type": "set", "set": {"log": "x" * 3000}, "next": "welcome"}, "limit of 2500"),
    ],
    ids=["a loop of states", "a message that cannot be sent", "variables past their limit"],
)
def test_hand_back_to_a_state_that_cannot_be_run_is_refused_with_nothing_sent(
    fake_redis: Redis, settings: Settings, state: dict[str, Any], fault: str
) -> None:
    """Without it, the route answered these with a 500."""
    settings = settings.with_changes(conversation_variables_bytes=2500)
    definition = {
        "version": 2,
        "startState": "welcome",
        "variables": {"pic": "not a url"},
        "states": {"welcome": {"say": "Hi"}, "again": state},
    }
    channel, conversation = _talked(fake_redis, settings, definition)
    pause(fake_redis, conversation.key)
    with pytest.raises(Conflict) as raised:
        _hand_back(fake_redis, settings, conversation, "again")
    assert "the state 'again' cannot be run" in str(raised.value)
    assert fault in str(raised.value)
    assert len(queued_bodies(fake_redis, conversation.key, channel.id)) == 1
    meta = read_meta(fake_redis, conversation.key)
    assert meta.handover.paused and "log" not in meta.memory.variables


def test_a_conversation_held_by_a_bot_turn_is_busy(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, conversation = _talked(fake_redis, settings, MENU)
    monkeypatch.setattr(conversation_store, "CONVERSATION_LOCK_WAIT", 0.05)
    assert Lock(fake_redis, keys.conversation_lock(conversation.key), 10).acquire()
    with pytest.raises(Conflict):
        agent_actions.act(
            fake_redis, settings, RecordingSender(), conversation, messages=[{"text": "x"}]
        )


def test_a_conversation_whose_channel_was_removed_is_a_conflict(
    fake_redis: Redis, settings: Settings
) -> None:
    channel, conversation = _talked(fake_redis, settings, MENU)
    channel_store.delete(fake_redis, channel.bot_id, channel.id)
    with pytest.raises(Conflict):
        agent_actions.act(
            fake_redis, settings, RecordingSender(), conversation, messages=[{"text": "x"}]
        )


def test_an_unknown_conversation_is_not_found(fake_redis: Redis, settings: Settings) -> None:
    _, conversation = _talked(fake_redis, settings, MENU)
    with pytest.raises(NotFound):
        conversation_store.find(fake_redis, conversation.bot_id, "LIVE", "nobody")
    with pytest.raises(NotFound):
        conversation_store.find(fake_redis, conversation.bot_id, "DRAFT", "u1")
    with pytest.raises(NotFound):
        conversation_store.find(fake_redis, "bot_missing", "LIVE", "u1")
