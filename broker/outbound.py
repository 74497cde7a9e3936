"""The documents Switchboard POSTs to endpoints."""

from __future__ import annotations

from typing import Any

from broker import clock


def channel_message(
    *,
    session_id: str,
    verify_token: str,
    message: dict[str, Any],
    counter: int,
    bot_id: str,
    at: float,
) -> dict[str, Any]:
    """One bot message for a channel's webhook URL (SPEC section 2)."""
    return {
        "recipient": {"id": session_id},
        "senderId": session_id,
        "verifyToken": verify_token,
        "message": message,
        "messageCounter": counter,
        "botId": bot_id,
        "sessionId": session_id,
        "timestamp": clock.iso(at),
    }
