"""The documents a bot turn emits for its replies, shaped like the example of
docs/wire-contract.md §2."""

from __future__ import annotations

from broker.conversations import turns
from broker.delivery import delivery_index
from tests.web_app import WebApp
from tests.wire_fixtures import assert_shaped_like_the_outbound_example


def test_a_bot_turn_emits_the_spec_document_with_counters_per_channel(web: WebApp) -> None:
    channel = web.channel(verifyToken="8wMsLZkdDPT64nqh")
    for text in (None, "pizza"):
        assert web.send(channel, "user-42", text).status_code == 202
    turns.run_pending(web.redis, web.settings, web.sender, web.conversation_key(channel, "user-42"))
    items = delivery_index.list_page(web.redis, offset=0, limit=10).items
    bodies = sorted((item["body"] for item in items), key=lambda b: b["messageCounter"])
    for body in bodies:
        assert_shaped_like_the_outbound_example(body)
    assert [b["message"] for b in bodies] == [
        {"text": "Hello! I repeat what you say."},
        {"text": "You said: pizza"},
    ]
    assert [b["messageCounter"] for b in bodies] == [1, 2]
    assert {b["recipient"]["id"] for b in bodies} == {"user-42"}
    assert {b["senderId"] for b in bodies} == {"user-42"}
    assert {b["verifyToken"] for b in bodies} == {"8wMsLZkdDPT64nqh"}
    assert {b["botId"] for b in bodies} == {channel["botId"]}
