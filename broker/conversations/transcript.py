"""Transcript items: `{"actor", "timestamp", "message"}`, as the offloading webhook sends them."""

from __future__ import annotations

from typing import Any

from broker.bots.payloads import PayloadKey
from broker.conversations.documents import CHANNEL_TYPE
from broker.core import clock

_MESSAGE_TYPES = {"text": "text", "postback": "postback", "intro": "intro", "location": "location"}


def user_message(
    record: dict[str, Any], bot_id: str, payloads: PayloadKey | None = None
) -> dict[str, Any]:
    """A queued inbound message as a UserMessage (docs/wire-contract.md §4); a payload that
    the conversation's key (`payloads`) opens names the state it leads to."""
    out: dict[str, Any] = {
        "messageType": _MESSAGE_TYPES[record["kind"]],
        "channelType": CHANNEL_TYPE,
        "sender": {"id": record["conversationId"], "botId": bot_id},
        "timestamp": clock.iso(record["receivedAt"]),
        "id": record["messageId"],
    }
    if record["kind"] == "text":
        out["text"] = record["text"]
    elif record["kind"] == "postback":
        out["title"] = record.get("title")
        payload = record.get("payload")
        target = record.get("nextDialogstateId")
        decoded = payloads.open(payload) if payloads and payload and not target else None
        # The state a button of ours leads to, named as a press of the hosted product's does.
        out["nextDialogstateId"] = target or (decoded[0] if decoded else None)
        if payload is not None:
            out["payload"] = payload
    elif record["kind"] == "location":
        out["coordinates"] = record["coordinates"]
    return out


def item(actor: str, timestamp: float, message: dict[str, Any]) -> dict[str, Any]:
    return {"actor": actor, "timestamp": clock.iso(timestamp), "message": message}
