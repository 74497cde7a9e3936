"""Transcript items: `{"actor", "timestamp", "message"}`, as the offloading webhook sends them.

A conversation's transcript keeps its newest items within two limits, TRANSCRIPT_MAX items
and SWITCHBOARD_TRANSCRIPT_BYTES bytes (`turn_commit.lua` drops the oldest as a commit goes
past either); `newest_within` keeps the same items of a list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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


def size(item: dict[str, Any]) -> int:
    """The bytes an item takes in the transcript: UTF-8 JSON, as `fanout` stores it."""
    return len(json.dumps(item, ensure_ascii=False).encode())


def newest_within(
    items: Sequence[dict[str, Any]], max_items: int, max_bytes: int
) -> list[dict[str, Any]]:
    """The newest of `items` (oldest first) that a transcript of these limits keeps: as many
    as fit, from the newest back to the first that does not."""
    kept, total = 0, 0
    for found in reversed(items):
        total += size(found)
        if kept == max_items or total > max_bytes:
            break
        kept += 1
    return list(items[len(items) - kept :])
