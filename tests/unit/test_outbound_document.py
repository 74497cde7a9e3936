"""The document a bot reply is POSTed as (docs/wire-contract.md §2), checked against the wire
contract's example."""

from __future__ import annotations

from broker.conversations import documents
from tests.wire_fixtures import assert_shaped_like_the_outbound_example, outbound_message


def test_channel_message_has_exactly_the_fields_of_the_spec() -> None:
    example = outbound_message()
    document = documents.channel_message(
        conversation_id="user-42",
        verify_token="8wMsLZkdDPT64nqh",
        message={"text": "Which pizza would you like?"},
        counter=1,
        bot_id="...",
        at=1_795_249_573.193,
    )
    assert_shaped_like_the_outbound_example(document)
    assert document == {**example, "timestamp": document["timestamp"]}
    assert document["timestamp"] == "2026-11-21T08:26:13.193Z"
