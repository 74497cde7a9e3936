"""Bot definitions through the real processes: the pizza bot orders a pizza over the Webhook
channel, its API call answered by a local kitchen; an API call to an unsafe address is refused
when the definition is saved, and again at call time; a slow API call holds back no other
conversation; a bot that keeps a growing log in a variable has the message that takes the
conversation's variables past their limit parked, and the conversation goes on."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from broker.bots import documents
from tests.integration.stacks import Api, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.receivers import Answer, Hit, Receiver, ReceiverFactory, texts, wait_delivered

PIZZA = Path(__file__).parents[2] / "examples" / "bots" / "pizza.yaml"


def kitchen(hit: Hit) -> Answer:
    """As examples/bots/pizza_kitchen.py answers a first order."""
    body = json.dumps({"id": "K0001", "eta": 20}).encode()
    return Answer(201, {"Content-Type": "application/json"}, body)


def channel_of(api: Api, definition: dict[str, Any], webhook_url: str) -> dict[str, Any]:
    bot = api.bot(definition)
    created = api.post(f"/v1/bots/{bot['id']}/channels/webhook", json={"webhookUrl": webhook_url})
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()
    return found


def press(channel: dict[str, Any], conversation: str, title: str, payload: str) -> None:
    answer = requests.post(
        channel["messagesUrl"],
        json={
            "conversationId": conversation,
            "message": {"postbackMessage": {"title": title, "payload": payload}},
        },
        headers={"Authorization": f"Bearer {channel['accessToken']}"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text


def test_the_pizza_bot_orders_a_pizza_over_the_webhook_channel(
    api: Api, receiver: Receiver, make_receiver: ReceiverFactory
) -> None:
    the_kitchen = make_receiver(kitchen)
    pizza = documents.load(PIZZA)
    pizza["variables"]["kitchen.url"] = f"http://127.0.0.1:{the_kitchen.port}"
    channel = channel_of(api, pizza, receiver.url)

    api.send(channel, "ann")
    hits = wait_delivered(receiver, 1)
    assert texts(hits) == ["Hi! What would you like?"]
    api.send(channel, "ann", "I'd like a FUNGHI please")
    (asked,) = wait_delivered(receiver, 2)[1:]
    assert asked.body["message"]["text"] == "What size for your funghi?"
    large = asked.body["message"]["quick_replies"][2]
    press(channel, "ann", large["title"], large["payload"])
    wait_delivered(receiver, 3)
    api.send(channel, "ann", "two")
    wait_delivered(receiver, 4)
    api.send(channel, "ann", "+32 470 12 34 56")
    (confirm,) = wait_delivered(receiver, 5)[4:]
    yes = confirm.body["message"]["quick_replies"][0]
    press(channel, "ann", yes["title"], yes["payload"])

    hits = wait_delivered(receiver, 7)
    assert texts(hits)[1:] == [
        "What size for your funghi?",
        "How many large funghi pizzas?",
        "Which phone number can the driver call?",
        "2 large funghi, the driver calls +32470123456. Shall I order?",
        "Order K0001 is in the oven. The driver will be there in about 20 minutes.",
        "Enjoy your meal! Say hi to order again.",
    ]
    (order,) = the_kitchen.hits
    assert (order.method, order.path) == ("POST", "/orders")
    assert order.body == {
        "pizza": "funghi",
        "size": "large",
        "count": 2,
        "phone": "+32470123456",
        "gift": None,
    }


UNSAFE = "http://169.254.169.254"


def calling(url: str) -> dict[str, Any]:
    return {
        "version": 2,
        "startState": "call",
        "states": {
            "call": {
                "type": "api",
                "request": {"url": url},
                "next": "answered",
                "onError": "refused",
            },
            "answered": {"say": "answered"},
            "refused": {"say": "refused: {{api.error}}"},
        },
    }


def test_an_api_call_to_an_unsafe_address_is_refused_when_saved_and_at_call_time(
    api: Api, receiver: Receiver
) -> None:
    saved = api.post("/v1/bots", json={"name": "unsafe", "definition": calling(UNSAFE + "/x")})
    assert saved.status_code == 422
    assert saved.json()["error"]["field"] == "definition.states.call.request.url"
    assert "outbound safety refuses" in saved.json()["error"]["message"]

    channel = channel_of(api, calling("{{target}}/latest/meta-data"), receiver.url)
    api.send(channel, "eve", sessionData={"target": UNSAFE})
    assert texts(wait_delivered(receiver, 1)) == [
        "refused: refused by outbound safety: resolves to 169.254.169.254"
    ]


def test_a_slow_api_call_holds_back_no_other_conversation(
    api: Api, receiver: Receiver, make_receiver: ReceiverFactory
) -> None:
    """A worker's turn runners take turns one at a time, but one waiting on a bot's API call
    lets the next run the turns that arrive meanwhile."""
    calling_started, released, answered = threading.Event(), threading.Event(), threading.Event()

    def slow(hit: Hit) -> Answer:
        calling_started.set()
        released.wait(4)  # within the call's 5 s limit
        answered.set()
        return Answer(200, {"Content-Type": "application/json"}, b"{}")

    kitchen = make_receiver(slow)
    waiting = channel_of(api, calling(kitchen.url), receiver.url)
    echo = api.echo_channel(receiver.url)
    api.send(waiting, "waits")
    wait_until(calling_started.is_set, what="the API call")
    api.send(echo, "other", "hi")
    assert texts(wait_delivered(receiver, 1)) == ["You said: hi"]
    assert not answered.is_set()
    released.set()
    assert texts(wait_delivered(receiver, 2))[1] == "answered"


def test_slow_api_calls_of_more_conversations_than_runners_hold_back_no_other_bot(
    api: Api, receiver: Receiver, make_receiver: ReceiverFactory
) -> None:
    """Each runner waiting on an API call is replaced by a new one: another bot's answer
    does not wait for the calls, and each message makes exactly one call."""
    conversations = 16  # four times the worker's 4 turn runners
    calls, released = [], threading.Event()

    def slow(hit: Hit) -> Answer:
        calls.append(hit.headers.get("idempotency-key"))
        released.wait(8)  # within the call's 9 s limit
        return Answer(200, {"Content-Type": "application/json"}, b"{}")

    kitchen = make_receiver(slow)
    definition = calling(kitchen.url)
    definition["states"]["call"]["request"]["timeout"] = 9
    waiting = channel_of(api, definition, receiver.url)
    for n in range(conversations):
        api.send(waiting, f"waits-{n}")
    wait_until(lambda: len(calls) == conversations, what="every conversation's API call")
    echo = api.echo_channel(receiver.url)
    api.send(echo, "other", "hi")
    assert texts(wait_delivered(receiver, 1)) == ["You said: hi"]
    assert not released.is_set()
    released.set()
    replies = texts(wait_delivered(receiver, conversations + 1))
    assert sorted(replies) == ["You said: hi", *["answered"] * conversations]
    assert len(calls) == conversations and len(set(calls)) == conversations


def test_past_the_runners_that_may_wait_a_turn_about_to_wait_is_put_off(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, make_receiver: ReceiverFactory
) -> None:
    """With every runner that may wait already waiting on an API, the next turn that would
    wait is put off instead of its runner waiting in place: another bot's answer does not
    wait for the calls, and each message still makes exactly one call."""
    require_redis()
    conversations = 6  # three times the runners that may wait
    calls: list[str | None] = []
    released, answered = threading.Event(), threading.Event()

    def slow(hit: Hit) -> Answer:
        calls.append(hit.headers.get("idempotency-key"))
        released.wait(8)  # within the call's 9 s limit
        answered.set()
        return Answer(200, {"Content-Type": "application/json"}, b"{}")

    kitchen = make_receiver(slow)
    log: Path = tmp_path_factory.mktemp("away") / "stack.log"
    with own_stack(log) as own:
        env = own.env(SWITCHBOARD_TURN_RUNNERS_AWAY="2")
        for role in ("web", "worker", "scheduler"):
            own.start(role, env)
        own.wait_ready()
        api = own.api
        definition = calling(kitchen.url)
        definition["states"]["call"]["request"]["timeout"] = 9
        waiting = channel_of(api, definition, receiver.url)
        for n in range(conversations):
            api.send(waiting, f"waits-{n}")
        wait_until(lambda: len(calls) >= 2, what="two conversations' API calls")
        echo = api.echo_channel(receiver.url)
        api.send(echo, "other", "hi")
        assert texts(wait_delivered(receiver, 1)) == ["You said: hi"]
        assert not answered.is_set() and len(calls) == 2
        released.set()
        replies = texts(wait_delivered(receiver, conversations + 1))
        assert sorted(replies) == ["You said: hi", *["answered"] * conversations]
        assert len(calls) == conversations and len(set(calls)) == conversations


#: Adds a kilobyte to `log` at each `grow`; `forget` unsets it.
GROWS_A_LOG: dict[str, Any] = {
    "version": 2,
    "startState": "grow",
    "routes": [
        {"match": "grow", "exact": True, "next": "grow"},
        {"match": "forget", "exact": True, "next": "forget"},
    ],
    "states": {
        "grow": {"type": "set", "set": {"log": "{{log}}" + "x" * 1000}, "next": "grown"},
        "grown": {"say": "grown"},
        "forget": {"type": "set", "unset": ["log"], "next": "forgot"},
        "forgot": {"say": "forgot"},
    },
}


def test_a_message_that_grows_the_variables_past_their_limit_is_parked(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> None:
    require_redis()
    log: Path = tmp_path_factory.mktemp("variables") / "stack.log"
    with own_stack(log) as own:
        env = own.env(
            SWITCHBOARD_TURN_RETRY_DELAY="0.2", SWITCHBOARD_CONVERSATION_VARIABLES_BYTES="2500"
        )
        for role in ("web", "worker", "scheduler"):
            own.start(role, env)
        own.wait_ready()
        api = own.api
        channel = channel_of(api, GROWS_A_LOG, receiver.url)
        for count in (1, 2):
            assert api.send(channel, "u1", "grow").status_code == 202
            wait_delivered(receiver, count)
        assert api.send(channel, "u1", "grow").status_code == 202
        (dead,) = wait_until(
            lambda: api.get("/v1/turn-dead-letters").json()["items"], what="the parked message"
        )
        assert dead["item"]["text"] == "grow" and dead["attempts"] == 3
        assert dead["error"].startswith("TooLarge: the session's variables would take 30")
        assert dead["error"].endswith("over their limit of 2500")
        for text in ("forget", "grow"):
            assert api.send(channel, "u1", text).status_code == 202
        assert texts(wait_delivered(receiver, 4)) == ["grown", "grown", "forgot", "grown"]
        variables = api.get(f"/v1/bots/{channel['botId']}/conversations/u1/session-data").json()[
            "sessionData"
        ]
        assert variables["log"] == "x" * 1000
