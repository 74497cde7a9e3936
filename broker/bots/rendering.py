"""Filling `{{variables}}` into BotMessages and API requests, and turning button targets into
payloads."""

from __future__ import annotations

import json
import re
from typing import Any

from broker.bots.botmessages import with_wire_defaults
from broker.bots.payloads import encode_payload
from broker.bots.variables import lookup

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")


#: Fields whose `{{variables}}` are filled in; a URL may start with one (see botmessages).
_RENDERED_FIELDS = ("text", "title", "subtitle", "url", "image_url", "item_url")


def render_value(value: Any, variables: dict[str, Any]) -> Any:
    if not isinstance(value, str):
        return value
    return PLACEHOLDER.sub(lambda m: _text(lookup(variables, m.group(1), "")), value)


def render_json(value: Any, variables: dict[str, Any]) -> Any:
    """A JSON value with every string's variables filled in; a string that is one placeholder
    alone becomes the variable's value as it is (a number stays a number)."""
    if isinstance(value, str):
        alone = PLACEHOLDER.fullmatch(value.strip())
        if alone:
            return lookup(variables, alone.group(1))
        return render_value(value, variables)
    if isinstance(value, list):
        return [render_json(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: render_json(item, variables) for key, item in value.items()}
    return value


def placeholders(text: str) -> list[str]:
    """The variables a text names."""
    return PLACEHOLDER.findall(text)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def render_message(message: Any, variables: dict[str, Any]) -> Any:
    """A BotMessage as it goes out: variables filled in, button targets turned into payloads,
    and the fields §3 always has that its author may leave out."""
    return with_wire_defaults(_rendered(message, variables))


def _rendered(message: Any, variables: dict[str, Any]) -> Any:
    if isinstance(message, list):
        return [_rendered(item, variables) for item in message]
    if not isinstance(message, dict):
        return message
    out: dict[str, Any] = {}
    for key, value in message.items():
        if key in ("goto", "params"):
            continue
        if key in _RENDERED_FIELDS:
            out[key] = render_value(value, variables)
        else:
            out[key] = _rendered(value, variables)
    if "goto" in message or "params" in message:
        params = [
            {**param, "value": render_json(param.get("value"), variables)}
            for param in message.get("params") or []
        ]
        out["payload"] = encode_payload(message.get("goto"), params)
    return out
