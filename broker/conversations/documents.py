"""The documents Switchboard POSTs to endpoints."""

from __future__ import annotations

from typing import Any

from broker.core import clock

#: The channel type the offloading webhook is told about: every conversation comes in
#: through a Webhook channel.
CHANNEL_TYPE = "webhook"


def channel_message(
    *,
    conversation_id: str,
    verify_token: str,
    message: dict[str, Any],
    counter: int,
    bot_id: str,
    at: float,
) -> dict[str, Any]:
    """One bot message for a channel's webhook URL (docs/wire-contract.md §2)."""
    return {
        "recipient": {"id": conversation_id},
        "senderId": conversation_id,
        "verifyToken": verify_token,
        "message": message,
        "messageCounter": counter,
        "botId": bot_id,
        "sessionId": conversation_id,
        "timestamp": clock.iso(at),
    }


def for_offloading(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Transcript items as the offloading webhook takes them: its `actor` is "user" or "bot"
    (§4), so an agent's message, which reaches the user as the bot's do, goes as "bot",
    marked `sentByAgent`."""
    return [
        {**item, "actor": "bot", "sentByAgent": True} if item.get("actor") == "agent" else item
        for item in items
    ]


def messages_event(
    *,
    items: list[dict[str, Any]],
    conversation_id: str,
    channel_id: str,
    version: str,
    bot_id: str,
    at: float,
) -> dict[str, Any]:
    """A `messages` event for the offloading webhook (docs/wire-contract.md §4): transcript
    items."""
    return {
        "event": "messages",
        "type": "messages",
        "timestamp": clock.iso(at),
        "messages": for_offloading(items),
        "channel": CHANNEL_TYPE,
        "channelId": channel_id,
        "sessionId": conversation_id,
        "version": version,
        "botId": bot_id,
    }


def offload_event(
    *,
    payload: dict[str, Any],
    transcript: list[dict[str, Any]],
    conversation_id: str,
    channel_id: str,
    version: str,
    bot_id: str,
    at: float,
) -> dict[str, Any]:
    """An `offload` event for the offloading webhook (docs/wire-contract.md §4): the action's
    payload and the whole conversation."""
    return {
        "event": "offload",
        "type": "offload",
        "payload": payload,
        "transcript": for_offloading(transcript),
        "channel": CHANNEL_TYPE,
        "channelId": channel_id,
        "timestamp": clock.iso(at),
        "sessionId": conversation_id,
        "version": version,
        "botId": bot_id,
    }
