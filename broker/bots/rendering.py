"""Filling `{{variables}}` into BotMessages, and turning button targets into payloads."""

from __future__ import annotations

import json
import re
from typing import Any

from broker.bots.payloads import encode_payload

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")


#: Fields whose `{{variables}}` are filled in; a URL may start with one (see botmessages).
_RENDERED_FIELDS = ("text", "title", "subtitle", "url", "image_url", "item_url")


def render_value(value: Any, variables: dict[str, Any]) -> Any:
    if not isinstance(value, str):
        return value
    return _PLACEHOLDER.sub(lambda m: _text(variables.get(m.group(1), "")), value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def render_message(message: Any, variables: dict[str, Any]) -> Any:
    """A BotMessage with variables filled in and button targets turned into payloads."""
    if isinstance(message, list):
        return [render_message(item, variables) for item in message]
    if not isinstance(message, dict):
        return message
    out: dict[str, Any] = {}
    for key, value in message.items():
        if key in ("goto", "params"):
            continue
        if key in _RENDERED_FIELDS:
            out[key] = render_value(value, variables)
        else:
            out[key] = render_message(value, variables)
    if "goto" in message or "params" in message:
        out["payload"] = encode_payload(message.get("goto"), message.get("params"))
    return out
