"""The document a bot reply is POSTed as (docs/wire-contract.md §2), checked against the wire
contract's example."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.conversations import documents, turns
from broker.core import ids
from broker.delivery import delivery_index
from tests.web_app import WebApp, web_app

FIXTURES = Path(__file__).parent.parent / "fixtures"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def spec_example() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "outbound_message.json").read_text())
    return loaded


def same_shape(document: dict[str, Any], example: dict[str, Any]) -> None:
    assert set(document) == set(example)
    assert set(document["recipient"]) == set(example["recipient"])
    for name, value in example.items():
        assert type(document[name]) is type(value), name
    assert ISO_MS.match(document["timestamp"]), document["timestamp"]


def test_channel_message_has_exactly_the_fields_of_the_spec() -> None:
    example = spec_example()
    document = documents.channel_message(
        conversation_id="user-42",
        verify_token="8wMsLZkdDPT64nqh",
        message={"text": "Which pizza would you like?"},
        counter=1,
        bot_id="...",
        at=1_795_249_573.193,
    )
    same_shape(document, example)
    assert document == {**example, "timestamp": document["timestamp"]}
    assert document["timestamp"] == "2026-11-21T08:26:13.193Z"


@pytest.fixture
def web() -> Iterator[WebApp]:
    with web_app() as made:
        yield made


def test_a_bot_turn_emits_the_spec_document_with_counters_per_channel(web: WebApp) -> None:
    channel = web.channel(verifyToken="8wMsLZkdDPT64nqh")
    for message in ({"introMessage": {}}, {"textMessage": {"text": "pizza"}}):
        answer = web.client.post(
            f"/v1/channels/webhook/{channel['id']}/messages",
            json={"conversationId": "user-42", "message": message},
            headers={"Authorization": f"Bearer {channel['accessToken']}"},
        )
        assert answer.status_code == 202
    conversation_key = ids.conversation_key(channel["botId"], channel["version"], "user-42")
    turns.run_pending(web.redis, web.settings, web.sender, conversation_key)
    items, _ = delivery_index.list_page(web.redis, offset=0, limit=10)
    bodies = sorted((item["body"] for item in items), key=lambda b: b["messageCounter"])
    for body in bodies:
        same_shape(body, spec_example())
    assert [b["message"] for b in bodies] == [
        {"text": "Hello! I repeat what you say."},
        {"text": "You said: pizza"},
    ]
    assert [b["messageCounter"] for b in bodies] == [1, 2]
    assert {b["recipient"]["id"] for b in bodies} == {"user-42"}
    assert {b["senderId"] for b in bodies} == {"user-42"}
    assert {b["verifyToken"] for b in bodies} == {"8wMsLZkdDPT64nqh"}
    assert {b["botId"] for b in bodies} == {channel["botId"]}
