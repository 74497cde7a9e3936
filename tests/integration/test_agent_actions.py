"""The agent route end to end: web process -> Redis -> worker process -> the channel's receiver."""

from __future__ import annotations

import standardwebhooks

from broker.core import ids
from broker.core.connection import Redis
from tests.conversations import pause
from tests.integration.stacks import Api
from tests.polling import wait_until
from tests.receivers import Receiver, ReceiverFactory, always, texts, wait_delivered

BUTTONS = {
    "buttonTemplate": {
        "textMessages": [{"text": "Pick one"}],
        "buttons": [
            {"postBackButton": {"title": "Menu", "payload": {"nextDialogstateId": "welcome"}}}
        ],
    }
}


def test_agent_messages_reach_the_user_signed_after_the_bots(api: Api, receiver: Receiver) -> None:
    channel = api.echo_channel(receiver.url)
    api.send(channel, "user-9")
    wait_delivered(receiver, 1, "the welcome")
    token = api.post(
        f"/v1/bots/{channel['botId']}/api-tokens", json={"description": "desk"}
    ).json()["token"]

    answer = api.post(
        f"/v1/bots/{channel['botId']}/conversations/user-9/actions?version=LIVE",
        json={
            "sendMessages": [
                {"textMessageTemplate": {"textMessages": [{"text": "Hi, Ann here"}]}},
                BUTTONS,
            ]
        },
        headers={"Authorization": f"Bearer {token}"},
    )

    assert answer.status_code == 202, answer.text
    hits = wait_delivered(receiver, 3, "the agent's messages")
    webhook = standardwebhooks.Webhook(channel["signingSecret"])
    bodies = [webhook.verify(hit.raw, hit.headers) for hit in hits]
    assert [b["messageCounter"] for b in bodies] == [1, 2, 3]
    assert bodies[1]["message"] == {"text": "Hi, Ann here"}
    assert bodies[2]["message"]["attachment"]["payload"]["buttons"][0]["title"] == "Menu"
    assert [hit.webhook_id for hit in hits[1:]] == answer.json()["deliveryIds"]
    transcript = api.get(f"/v1/bots/{channel['botId']}/conversations/user-9/messages").json()
    assert [i["actor"] for i in transcript["items"]] == ["user", "bot", "agent", "agent"]


def test_a_paused_conversation_is_silent_until_handed_back(
    api: Api, receiver: Receiver, make_receiver: ReceiverFactory, data: Redis
) -> None:
    channel = api.echo_channel(receiver.url)
    live_chat = make_receiver(always(200, body=b'{"status": "ok"}'))
    offloading = {"apiUrl": live_chat.url, "verifyToken": "desk-token"}
    assert api.put(f"/v1/bots/{channel['botId']}/offloading", json=offloading).status_code == 200
    api.send(channel, "user-5")
    wait_delivered(receiver, 1, "the welcome")
    pause(data, ids.conversation_key(channel["botId"], "LIVE", channel["id"], "user-5"))
    messages = f"/v1/bots/{channel['botId']}/conversations/user-5/messages"

    api.send(channel, "user-5", "is anyone there?")
    wait_until(
        lambda: api.get(messages).json()["total"] == 3, what="the paused message in the transcript"
    )
    answer = api.post(
        f"/v1/bots/{channel['botId']}/conversations/user-5/actions",
        json={"resumeBot": True, "goToDialogstate": "welcome"},
    )
    assert answer.status_code == 202, answer.text
    api.send(channel, "user-5", "thanks")

    hits = wait_delivered(receiver, 3, "hand-back and echo")
    assert texts(hits) == [
        "Hello! I repeat what you say.",
        "Hello! I repeat what you say.",
        "You said: thanks",
    ]
    assert [h.body["messageCounter"] for h in hits] == [1, 2, 3]
    listed = api.get(f"/v1/bots/{channel['botId']}/conversations").json()["items"]
    assert listed[0]["paused"] is False


def test_another_bots_token_is_refused(api: Api, receiver: Receiver) -> None:
    channel = api.echo_channel(receiver.url)
    other = api.bot(name="other")
    token = api.post(f"/v1/bots/{other['id']}/api-tokens").json()["token"]
    api.send(channel, "user-1")
    wait_delivered(receiver, 1, "the welcome")
    answer = api.post(
        f"/v1/bots/{channel['botId']}/conversations/user-1/actions",
        json={"sendMessages": [{"text": "x"}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"


def test_the_same_session_id_on_two_channels_is_two_conversations(
    api: Api, make_receiver: ReceiverFactory
) -> None:
    """Channel B's token with channel A's conversationId gets a
    conversation of its own; an agent's message goes to the channel of its conversation."""
    hook_a, hook_b = make_receiver(), make_receiver()
    channel_a = api.echo_channel(hook_a.url)
    bot = channel_a["botId"]
    channel_b = api.post(f"/v1/bots/{bot}/channels/webhook", json={"webhookUrl": hook_b.url}).json()
    api.send(channel_a, "shared", "hi from A", sessionData={"secret": "A's"})
    wait_delivered(hook_a, 1)
    api.send(channel_b, "shared", "hi from B")
    (on_b,) = wait_delivered(hook_b, 1)
    assert on_b.body["messageCounter"] == 1 and texts([on_b]) == ["You said: hi from B"]
    path = f"/v1/bots/{bot}/conversations/shared"
    ambiguous = api.post(f"{path}/actions", json={"sendMessages": [{"text": "to whom?"}]})
    assert ambiguous.status_code == 409
    assert ambiguous.json()["error"]["code"] == "ambiguous_conversation"
    acted = api.post(
        f"{path}/actions?channelId={channel_a['id']}", json={"sendMessages": [{"text": "agent"}]}
    )
    assert acted.status_code == 202, acted.text
    assert texts(wait_delivered(hook_a, 2))[-1] == "agent"
    assert len(hook_b.delivered()) == 1
    on_b_vars = api.get(f"{path}/session-data?channelId={channel_b['id']}").json()
    assert "secret" not in on_b_vars["sessionData"]
