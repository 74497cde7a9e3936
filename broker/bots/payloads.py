"""Button payloads: a button's target state and variables, as one opaque string."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from broker.core import strict_json

_PAYLOAD_PREFIX = "sb1."


def encode_payload(goto: str | None, params: list[dict[str, Any]] | None) -> str:
    raw = json.dumps({"g": goto, "p": params or []}, separators=(",", ":")).encode()
    return _PAYLOAD_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_payload(payload: str) -> tuple[str | None, list[dict[str, Any]]] | None:
    """The target state and variables of a button payload, or None if it is not ours."""
    if not payload.startswith(_PAYLOAD_PREFIX):
        return None
    data = payload[len(_PAYLOAD_PREFIX) :]
    try:
        # Strictly: a payload comes back from outside, and a forged one must not upset a turn.
        raw = strict_json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    params = raw.get("p")
    if not isinstance(params, list):
        params = []
    goto = raw.get("g") if isinstance(raw.get("g"), str) else None
    return goto, [
        p for p in params if isinstance(p, dict) and isinstance(p.get("key"), str) and p["key"]
    ]
