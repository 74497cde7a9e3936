"""Button presses and the bot's constants, through real turns on fakeredis: a payload opens
only in the conversation it was sent to, a press that leads nowhere sets nothing, and no
input overrides the definition's `variables`, which a publish changes for conversations
under way."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from broker.bots import bot_store, payload_secret
from broker.bots.actions import ActionOutcome, ApiAnswer, ApiRequest
from broker.bots.custom_actions import ActionContext
from broker.channels.channel import Channel
from broker.conversations import turns
from broker.core import ids
from broker.core.connection import Redis
from broker.core.settings import Settings
from tests.conversations import new_channel, queued_bodies, read_meta, user_says
from tests.fakes import RecordingSender

EVIL = "http://127.0.0.5:19104/forged"


def pizza(url: str = "https://kitchen.example", token: str = "SECRET-KITCHEN-TOKEN") -> Any:
    return {
        "version": 2,
        "startState": "menu",
        "fallbackState": "fallback",
        "variables": {"kitchen.url": url, "kitchen.token": token},
        "states": {
            "menu": {
                "say": [
                    {
                        "text": "Pick one",
                        "quick_replies": [
                            {
                                "title": "Diavola",
                                "goto": "place",
                                "params": [{"key": "pizza", "value": "diavola"}],
                            }
                        ],
                    }
                ]
            },
            "place": {
                "type": "api",
                "request": {
                    "method": "POST",
                    "url": "{{kitchen.url}}/orders",
                    "headers": {"Authorization": "Bearer {{kitchen.token}}"},
                },
                "next": "placed",
                "onError": "placed",
            },
            "placed": {"say": "placed {{pizza}}"},
            "fallback": {"say": "fallback [{{lastMessage}}] pizza={{pizza}}"},
        },
    }


@dataclass
class Kitchen:
    calls: list[ApiRequest] = field(default_factory=list)

    def call_api(self, request: ApiRequest) -> ApiAnswer:
        self.calls.append(request)
        return ApiAnswer(201, {})

    def run_action(self, name: str, context: ActionContext, timeout: float) -> ActionOutcome:
        raise AssertionError("no custom actions here")


class Chat:
    """One user's conversation on a channel, turn by turn."""

    def __init__(self, r: Redis, settings: Settings, channel: Channel, user: str = "u1") -> None:
        self.r, self.settings, self.channel, self.user = r, settings, channel, user
        self.sender = RecordingSender()
        self.kitchen = Kitchen()
        self.key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, user)
        self.seen = 0

    def send(self, message: dict[str, Any], **fields: Any) -> list[str]:
        """The texts the bot answered a message (normal form) with."""
        user_says(
            self.r,
            self.settings,
            self.sender,
            self.channel,
            conversation_id=self.user,
            **message,
            **fields,
        )
        turns.run_pending(self.r, self.settings, self.sender, self.key, self.kitchen)
        bodies = queued_bodies(self.r, self.key, self.channel.id)
        new, self.seen = bodies[self.seen :], len(bodies)
        self.last = [body["message"] for body in new]
        return [message.get("text") for message in self.last]

    def press(self, payload: str, title: str = "Diavola", **fields: Any) -> list[str]:
        return self.send({"kind": "postback", "title": title, "payload": payload}, **fields)

    def button(self) -> str:
        payload: str = self.last[0]["quick_replies"][0]["payload"]
        return payload

    @property
    def variables(self) -> dict[str, Any]:
        return read_meta(self.r, self.key).memory.variables


def _chat(r: Redis, settings: Settings, user: str = "u1") -> Chat:
    chat = Chat(r, settings, new_channel(r, settings, pizza()), user)
    assert chat.send({"kind": "intro"}) == ["Pick one"]
    return chat


def _unsigned(goto: str, params: list[dict[str, Any]]) -> str:
    raw = json.dumps({"g": goto, "p": params}, separators=(",", ":")).encode()
    return "sb1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_the_bot_s_own_button_leads_where_it_says(fake_redis: Redis, settings: Settings) -> None:
    chat = _chat(fake_redis, settings)
    payload = chat.button()
    assert payload.startswith("sb2.")
    assert chat.press(payload) == ["placed diavola"]
    (call,) = chat.kitchen.calls
    assert call.url == "https://kitchen.example/orders"
    assert call.headers["Authorization"] == "Bearer SECRET-KITCHEN-TOKEN"


def test_a_forged_payload_is_read_as_its_title_and_sets_nothing(
    fake_redis: Redis, settings: Settings
) -> None:
    chat = _chat(fake_redis, settings)
    params = [{"key": "kitchen.url", "value": EVIL}, {"key": "pizza", "value": "forged"}]
    forged = _unsigned("place", params)
    for payload in (forged, "sb2." + forged.removeprefix("sb1.") + "." + "A" * 16):
        assert chat.press(payload, title="Go") == ["fallback [Go] pizza="]
    assert chat.kitchen.calls == []
    assert chat.variables["kitchen.url"] == "https://kitchen.example"
    assert "pizza" not in chat.variables


def test_a_button_of_another_conversation_does_not_open_here(
    fake_redis: Redis, settings: Settings
) -> None:
    chat = _chat(fake_redis, settings)
    other = Chat(fake_redis, settings, chat.channel, "u2")
    other.send({"kind": "intro"})
    assert chat.press(other.button()) == ["fallback [Diavola] pizza="]
    assert chat.kitchen.calls == []
    assert other.press(other.button()) == ["placed diavola"]


def test_the_secret_is_the_deployment_s_and_each_conversation_has_its_own_key(
    fake_redis: Redis, settings: Settings
) -> None:
    chat = _chat(fake_redis, settings)
    key = payload_secret.key_for(fake_redis, chat.key)
    assert key.open(chat.button()) == ("place", [{"key": "pizza", "value": "diavola"}])
    assert payload_secret.key_for(fake_redis, chat.key + "x").open(chat.button()) is None


def test_input_does_not_override_the_bot_s_constants(fake_redis: Redis, settings: Settings) -> None:
    chat = _chat(fake_redis, settings)
    button = chat.button()
    chat.send({"kind": "text", "text": "hm"}, sessionData={"kitchen.url": EVIL, "pizza": "x"})
    chat.send({"kind": "text", "text": "hm"}, sessionData={"kitchen": {"url": EVIL}})
    assert chat.variables["kitchen.url"] == "https://kitchen.example"
    assert "kitchen" not in chat.variables
    pressed = chat.press(
        button,
        sessionDataToSet=[
            {"key": "kitchen.url", "value": EVIL},
            {"key": "kitchen", "value": {"token": "stolen"}},
        ],
    )
    assert pressed == ["placed diavola"]
    (call,) = chat.kitchen.calls
    assert call.url == "https://kitchen.example/orders"
    assert call.headers["Authorization"] == "Bearer SECRET-KITCHEN-TOKEN"


def test_a_publish_reaches_conversations_under_way(fake_redis: Redis, settings: Settings) -> None:
    chat = _chat(fake_redis, settings)
    bot_store.put_draft(fake_redis, chat.channel.bot_id, pizza("https://new.example", "NEW"))
    bot_store.publish(fake_redis, chat.channel.bot_id)
    assert chat.press(chat.button()) == ["placed diavola"]
    (call,) = chat.kitchen.calls
    assert call.url == "https://new.example/orders"
    assert call.headers["Authorization"] == "Bearer NEW"


def test_a_button_whose_state_is_gone_is_read_as_its_title_and_sets_nothing(
    fake_redis: Redis, settings: Settings
) -> None:
    chat = _chat(fake_redis, settings)
    button = chat.button()
    newer = pizza()
    newer["states"]["menu"] = {"say": "Pick one"}
    del newer["states"]["place"]
    bot_store.put_draft(fake_redis, chat.channel.bot_id, newer)
    bot_store.publish(fake_redis, chat.channel.bot_id)
    assert chat.press(button) == ["fallback [Diavola] pizza="]
    assert "pizza" not in chat.variables
    missing = {"kind": "postback", "title": "Go", "nextDialogstateId": "place"}
    set_too = [{"key": "pizza", "value": "set"}]
    assert chat.send(missing, sessionDataToSet=set_too) == ["fallback [Go] pizza="]
    assert "pizza" not in chat.variables
