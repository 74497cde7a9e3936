"""Human handover end to end: web, worker and scheduler processes, a channel receiver and a
live-chat desk, each a real local HTTP server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import standardwebhooks

from tests.integration.stacks import Api, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.receivers import Answer, Hit, Receiver, ReceiverFactory, texts

VERIFY = "desk-verify-token-1"
TAKEN = {"offloadSuccess": True, "pauseBot": True}
WELCOME = "Hello! I repeat what you say."
NO_AGENT = "No agent is available right now."


def desk(offload_answer: Callable[[Hit], Answer] | None = None) -> Callable[[Hit], Answer]:
    """A live-chat platform: passes the health check, takes `messages`, answers `offload`."""

    def behaviour(hit: Hit) -> Answer:
        if hit.method == "GET":
            token = parse_qs(urlsplit(hit.path).query).get("challenge.verifyToken")
            if token != [VERIFY]:
                return Answer(403, body=b'{"error": "bad token"}')
            return Answer(200, {"Content-Type": "application/json"}, b'{"status": "ok"}')
        if hit.body["event"] == "offload" and offload_answer is not None:
            return offload_answer(hit)
        body = json.dumps(TAKEN).encode() if hit.body["event"] == "offload" else b""
        return Answer(200, {"Content-Type": "application/json"}, body)

    return behaviour


def events(receiver: Receiver, kind: str | None = None) -> list[dict[str, Any]]:
    """What the desk took (2xx), one body per webhook-id, in arrival order."""
    seen: dict[str, dict[str, Any]] = {}
    for hit in receiver.delivered():
        if hit.method == "POST" and hit.webhook_id not in seen:
            seen[hit.webhook_id] = hit.body
    return [body for body in seen.values() if kind is None or body["event"] == kind]


def said(receiver: Receiver, actor: str) -> list[str]:
    """The texts of one actor in the `messages` events the desk took: "user", "bot", or
    "agent" (an agent's message goes as the bot's, marked `sentByAgent`)."""
    items = [item for event in events(receiver, "messages") for item in event["messages"]]
    assert {item["actor"] for item in items} <= {"user", "bot"}
    return [
        item["message"].get("text", item["message"].get("name", ""))
        for item in items
        if ("agent" if item.get("sentByAgent") else item["actor"]) == actor
    ]


def configure(api: Api, bot_id: str, receiver: Receiver) -> dict[str, Any]:
    answer = api.put(
        f"/v1/bots/{bot_id}/offloading", json={"apiUrl": receiver.url, "verifyToken": VERIFY}
    )
    assert answer.status_code == 200, answer.text
    configured: dict[str, Any] = answer.json()
    return configured


def test_a_conversation_is_handed_to_an_agent_and_back(
    api: Api, make_receiver: ReceiverFactory
) -> None:
    channel_hook = make_receiver()
    live_chat = make_receiver(
        desk(lambda hit: Answer(200, body=json.dumps(TAKEN).encode(), delay=0.5))
    )
    refusing = make_receiver(lambda hit: Answer(500, body=b"not today"))
    channel = api.echo_channel(channel_hook.url)
    bot_id = channel["botId"]

    refused = api.put(
        f"/v1/bots/{bot_id}/offloading", json={"apiUrl": refusing.url, "verifyToken": VERIFY}
    )
    assert refused.status_code == 422
    assert "not today" in refused.json()["error"]["message"]
    offloading = configure(api, bot_id, live_chat)

    api.send(channel, "ann")
    api.send(channel, "ann", "hello")
    wait_until(lambda: said(live_chat, "bot") == [WELCOME, "You said: hello"], what="events")

    api.send(channel, "ann", "human")
    api.send(channel, "ann", "is anyone there?", sessionData={"email": "ann@example.com"})
    (offload,) = wait_until(lambda: events(live_chat, "offload"), what="the offload")
    assert offload["payload"] == {"reason": "user asked"}
    assert [item["actor"] for item in offload["transcript"]] == ["user", "bot"] * 2 + ["user"]
    assert offload["transcript"][-1]["message"]["text"] == "human"
    wait_until(lambda: "is anyone there?" in said(live_chat, "user"), what="the waiting message")
    listed = api.get(f"/v1/bots/{bot_id}/conversations", params={"paused": "true"}).json()
    assert [(item["sessionId"], item["paused"]) for item in listed["items"]] == [("ann", True)]
    variables = api.get(f"/v1/bots/{bot_id}/conversations/ann/session-data").json()
    assert variables["sessionData"]["email"] == "ann@example.com"

    token = api.post(f"/v1/bots/{bot_id}/api-tokens", json={"description": "desk"}).json()
    acted = api.post(
        f"/v1/bots/{bot_id}/conversations/ann/actions",
        json={
            "sendMessages": [
                {"textMessageTemplate": {"textMessages": [{"text": "Hi Ann, Bo here."}]}},
                {"text": "How can I help?"},
            ]
        },
        headers={"Authorization": f"Bearer {token['token']}"},
    )
    assert acted.status_code == 202, acted.text
    wait_until(
        lambda: said(live_chat, "agent") == ["Hi Ann, Bo here.", "How can I help?"],
        what="the agent's messages on the desk",
    )
    unknown = api.post(
        f"/v1/bots/{bot_id}/conversations/ann/actions",
        json={"resumeBot": True, "goToDialogstate": "nowhere"},
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "goToDialogstate"
    back = api.post(
        f"/v1/bots/{bot_id}/conversations/ann/actions",
        json={"resumeBot": True, "goToDialogstate": "welcome"},
    )
    assert back.status_code == 202 and back.json()["paused"] is False
    api.send(channel, "ann", "thanks")

    expected = [
        WELCOME,
        "You said: hello",
        "Hi Ann, Bo here.",
        "How can I help?",
        WELCOME,
        "You said: thanks",
    ]
    wait_until(lambda: texts(channel_hook.delivered()) == expected, what="the channel's messages")
    hits = channel_hook.delivered()
    assert [hit.body["messageCounter"] for hit in hits] == [1, 2, 3, 4, 5, 6]
    assert len({hit.webhook_id for hit in channel_hook.hits}) == 6
    wait_until(lambda: "bot_resumed" in said(live_chat, "bot"), what="the hand-back notice")
    wait_until(lambda: said(live_chat, "bot")[-1] == "You said: thanks", what="the last event")
    assert said(live_chat, "user") == ["", "hello", "human", "is anyone there?", "thanks"]

    desk_hits = [hit for hit in live_chat.delivered() if hit.method == "POST"]
    webhook = standardwebhooks.Webhook(offloading["signingSecret"])
    for hit in desk_hits:
        webhook.verify(hit.raw, hit.headers)
        assert parse_qs(urlsplit(hit.path).query)["challenge.verifyToken"] == [VERIFY]
    transcript = api.get(f"/v1/bots/{bot_id}/conversations/ann/messages").json()["items"]
    actors = [item["actor"] for item in transcript]
    assert actors.count("agent") == 2 and actors[0] == "user"
    listed = api.get(f"/v1/bots/{bot_id}/conversations", params={"paused": "true"}).json()
    assert listed["items"] == []


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, body=json.dumps({"offloadSuccess": False, "pauseBot": True}).encode()),
        Answer(200, body=b"<html>sure</html>"),
        Answer(200, body=b'{"pauseBot": true}'),
    ],
    ids=["refused", "not-json", "malformed"],
)
def test_an_offload_that_is_refused_or_malformed_goes_to_the_failure_state(
    api: Api, make_receiver: ReceiverFactory, answer: Answer
) -> None:
    channel_hook = make_receiver()
    live_chat = make_receiver(desk(lambda hit: answer))
    channel = api.echo_channel(channel_hook.url)
    configure(api, channel["botId"], live_chat)

    for text in ("human", "hello?"):
        api.send(channel, "bob", text)

    wait_until(
        lambda: texts(channel_hook.delivered()) == [NO_AGENT, "You said: hello?"], what="replies"
    )
    wait_until(lambda: said(live_chat, "bot") == [NO_AGENT, "You said: hello?"], what="events")
    assert len(events(live_chat, "offload")) == 1
    for receiver in (channel_hook, live_chat):
        posted = [hit.webhook_id for hit in receiver.delivered() if hit.method == "POST"]
        assert len(posted) == len(set(posted))
    conversation = api.get(f"/v1/bots/{channel['botId']}/conversations").json()["items"][0]
    assert conversation["paused"] is False and conversation["offloadPending"] is False


def test_an_unreachable_offloading_endpoint_goes_to_the_failure_state(
    api: Api, make_receiver: ReceiverFactory
) -> None:
    channel_hook = make_receiver()
    live_chat = make_receiver(desk())
    channel = api.echo_channel(channel_hook.url)
    offloading = configure(api, channel["botId"], live_chat)
    live_chat.stop()  # gone after the health check

    api.send(channel, "cy", "human")
    api.send(channel, "cy", "still no one?")

    wait_until(
        lambda: texts(channel_hook.delivered()) == [NO_AGENT, "You said: still no one?"],
        timeout=20,
        what="the failure branch, then the bot again",
    )
    dead = api.get("/v1/dead-letters", params={"endpointId": offloading["endpointId"]}).json()
    assert "offload" in {item["kind"] for item in dead["items"]}
    assert len({hit.webhook_id for hit in channel_hook.hits}) == 2


def test_a_silent_agent_hands_the_conversation_back_by_itself(
    tmp_path_factory: pytest.TempPathFactory, make_receiver: ReceiverFactory
) -> None:
    require_redis()
    channel_hook = make_receiver()
    live_chat = make_receiver(desk())
    log: Path = tmp_path_factory.mktemp("resume") / "stack.log"
    with own_stack(log) as own:
        # Long enough for a loaded machine's test to see the pause before it ends.
        env = own.env(SWITCHBOARD_RESUME_AFTER="3")
        for role in ("web", "worker", "scheduler"):
            own.start(role, env)
        own.wait_ready()
        channel = own.api.echo_channel(channel_hook.url)
        configure(own.api, channel["botId"], live_chat)
        own.api.send(channel, "dee", "human")
        wait_until(lambda: events(live_chat, "offload"), what="the offload")
        conversations = f"/v1/bots/{channel['botId']}/conversations"
        wait_until(
            lambda: own.api.get(conversations, params={"paused": "true"}).json()["total"] == 1,
            what="the pause",
        )

        wait_until(lambda: "bot_resumed" in said(live_chat, "bot"), what="the auto-resume")
        notice = [
            item["message"]
            for event in events(live_chat, "messages")
            for item in event["messages"]
            if item["message"].get("name") == "bot_resumed"
        ]
        assert notice == [
            {
                "type": "event",
                "name": "bot_resumed",
                "data": {"by": "timeout", "agentSilentSeconds": 3},
            }
        ]
        own.api.send(channel, "dee", "anyone?")
        wait_until(
            lambda: texts(channel_hook.delivered()) == ["You said: anyone?"], what="the bot again"
        )
