"""User messages as the offloading webhook sees them (UserMessage, docs/wire-contract.md §4)."""

from __future__ import annotations

from typing import Any

import pytest

from broker.bots.payloads import PayloadKey
from broker.conversations.transcript import user_message

KEY = PayloadKey.random()
SEALED = KEY.seal("size", [])
#: Sealed with another key: it names no state.
FORGED = PayloadKey.random().seal("size", [])


def _press(**fields: Any) -> dict[str, Any]:
    return {
        "kind": "postback",
        "conversationId": "u1",
        "messageId": "in_1",
        "receivedAt": 1764576000.0,
        "title": "Go",
        **fields,
    }


@pytest.mark.parametrize(
    ("press", "target", "payload"),
    [
        (_press(nextDialogstateId="size"), "size", None),
        (_press(payload=SEALED), "size", SEALED),
        (_press(payload=FORGED), None, FORGED),
        (_press(payload="THEIRS"), None, "THEIRS"),
    ],
)
def test_a_press_names_the_state_it_leads_to(
    press: dict[str, Any], target: str | None, payload: str | None
) -> None:
    message = user_message(press, "bot_1", KEY)
    assert message["messageType"] == "postback" and message["title"] == "Go"
    assert message["nextDialogstateId"] == target
    assert message.get("payload") == payload
    assert ("payload" in message) is (payload is not None)
