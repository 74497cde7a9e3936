"""An existing client of the legacy route, through real web, worker and scheduler processes.

It sends what such clients send (`sender.id`, `verifyToken`, a button press as JSON
text) and reads the replies the way the public example receivers do: `senderId`,
`verifyToken` and `message.text`.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.integration.stacks import Api
from tests.receivers import Hit, Receiver, ReceiverFactory, wait_delivered

PIZZA_BOT = {
    "startState": "menu",
    "fallbackState": "menu",
    "states": [
        {
            "id": "menu",
            "messages": [
                {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "button",
                            "text": "Which size?",
                            "buttons": [
                                {
                                    "type": "postback",
                                    "title": "Small",
                                    "goto": "chosen",
                                    "params": [{"key": "size", "value": "small"}],
                                }
                            ],
                        },
                    }
                }
            ],
        },
        {"id": "chosen", "messages": [{"text": "A {{size}} pizza ({{locale}})"}]},
    ],
}


def legacy_send(api: Api, bot_id: str, sender: str, token: str, text: str) -> requests.Response:
    return requests.post(
        f"{api.base}/api/webhookMessage/{bot_id}",
        json={"text": text, "sender": {"id": sender}, "verifyToken": token, "locale": "fr"},
        timeout=10,
    )


def read_like_an_example_receiver(hit: Hit) -> tuple[str, str, dict[str, Any]]:
    body = hit.body
    return body["senderId"], body["verifyToken"], body["message"]


def test_a_legacy_client_talks_to_its_channel_and_presses_buttons(
    api: Api, make_receiver: ReceiverFactory
) -> None:
    other, mine = make_receiver(), make_receiver()
    bot = api.bot(PIZZA_BOT, name="pizza")
    for url, token in ((other.url, "the-other-channel-token"), (mine.url, "8wMsLZkdDPT64nqh")):
        created = api.post(
            f"/v1/bots/{bot['id']}/channels/webhook", json={"webhookUrl": url, "verifyToken": token}
        )
        assert created.status_code == 201, created.text
    sender = "a7355930-fa92-11e7-8308-2f056e75d1ee"

    first = legacy_send(api, bot["id"], sender, "8wMsLZkdDPT64nqh", "hi")
    assert first.status_code == 200 and first.text == "EVENT_RECEIVED"
    (menu,) = wait_delivered(mine, 1)
    sender_id, token, message = read_like_an_example_receiver(menu)
    assert (sender_id, token) == (sender, "8wMsLZkdDPT64nqh")
    assert message["attachment"]["payload"]["text"] == "Which size?"

    pressed = {
        "params": [{"key": "size", "value": "large"}],
        "nextDialogstateId": "chosen",
        "type": "postback",
        "caption": "Large",
    }
    assert legacy_send(api, bot["id"], sender, token, json.dumps(pressed)).status_code == 200
    _, large = wait_delivered(mine, 2)
    assert read_like_an_example_receiver(large) == (
        sender,
        "8wMsLZkdDPT64nqh",
        {"text": "A large pizza (fr)"},
    )

    button_payload = message["attachment"]["payload"]["buttons"][0]["payload"]
    assert legacy_send(api, bot["id"], sender, token, button_payload).status_code == 200
    _, _, small = wait_delivered(mine, 3)
    assert small.body["message"] == {"text": "A small pizza (fr)"}
    assert [hit.body["messageCounter"] for hit in mine.delivered()] == [1, 2, 3]
    assert other.delivered() == []


def test_a_wrong_verify_token_is_401_and_gets_no_reply(api: Api, receiver: Receiver) -> None:
    channel = api.echo_channel(receiver.url)
    answer = legacy_send(api, channel["botId"], "s1", "not-the-token", "hi")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert legacy_send(api, channel["botId"], "s1", channel["verifyToken"], "hi").status_code == 200
    (hit,) = wait_delivered(receiver, 1)
    assert hit.body["message"] == {"text": "You said: hi"}
