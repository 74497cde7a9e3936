"""The legacy Webhook message API (docs/wire-contract.md §1b): its body, its channel lookup, its
normal form.

Existing clients post `{"text", "sender": {"id"}, "verifyToken", "locale"?}` to
`/api/webhookMessage/{botId}`. A button press arrives as `text` holding a JSON string
(`params`, `nextDialogstateId`, `type`, `caption`), or as the opaque payload of one
of our buttons that opens in the conversation; both become postbacks. Any other text,
however much it looks like JSON or like a payload, is the user's.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from broker.bots import bot_store, payload_secret
from broker.bots.payloads import is_ours
from broker.channels import channel_store
from broker.channels.channel import Channel
from broker.core import ids, strict_json
from broker.core.connection import Redis
from broker.core.errors import NotFound, Unauthorized, ValidationFailed
from broker.core.validation import variable_key


class Sender(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: StrictStr = Field(min_length=1, max_length=256)


class LegacyMessage(BaseModel):
    """POST /api/webhookMessage/{botId}: the verify token authenticates, in the body."""

    model_config = ConfigDict(extra="allow")

    text: StrictStr = Field(min_length=1, max_length=10_000)
    sender: Sender
    #: Optional here so that a missing token is answered 401, as a wrong one is.
    verifyToken: StrictStr | None = Field(default=None, max_length=256)
    locale: StrictStr | None = Field(default=None, min_length=1, max_length=35)


def find_channel(r: Redis, bot_id: str, verify_token: str | None) -> Channel:
    """The bot's Webhook channel whose verify token is `verify_token`.

    Every channel is compared, in constant time, so the answer's timing does not
    tell how many channels there are or which one nearly matched.
    """
    if not bot_store.exists(r, bot_id):
        raise NotFound(f"no bot {bot_id!r}")
    if not verify_token:
        raise Unauthorized(
            "send the channel's verify token as verifyToken in the body", field="verifyToken"
        )
    found: Channel | None = None
    for channel in channel_store.of_bot(r, bot_id):
        if ids.same_secret(verify_token, channel.verify_token):
            found = found or channel
    if found is None:
        raise Unauthorized(
            "that verify token is not one of this bot's channels", field="verifyToken"
        )
    return found


def normalize(r: Redis, channel: Channel, body: LegacyMessage) -> dict[str, Any]:
    """The message in Switchboard's own form (see `broker.channels.message_form.normalize`)."""
    out = (
        _our_button(r, channel, body)
        or _button_press(body.text)
        or {"kind": "text", "text": body.text}
    )
    if body.locale is not None:
        out["sessionData"] = {"locale": body.locale}
    return out


def _our_button(r: Redis, channel: Channel, body: LegacyMessage) -> dict[str, Any] | None:
    """The payload of one of our buttons that the conversation's key opens. One that does not
    open is not told from a user's words (`sb2.hello.world`), and stays theirs."""
    if not is_ours(body.text):
        return None
    conversation_key = ids.conversation_key(
        channel.bot_id, channel.version, channel.id, body.sender.id
    )
    if payload_secret.key_for(r, conversation_key).open(body.text) is None:
        return None
    return {"kind": "postback", "title": None, "payload": body.text}


def _button_press(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        # Read leniently (NaN, lone surrogates, any depth Python reaches) to tell a press
        # from a text that only looks like JSON; a press is then read strictly.
        pressed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(pressed, dict):
        return None
    target = pressed.get("nextDialogstateId")
    payload = pressed.get("payload")
    if not isinstance(target, str) or not target:
        target = None
    if not isinstance(payload, str) or not payload:
        payload = None
    if target is None and payload is None:
        return None
    try:
        strict_json.loads(text)
    except ValueError as exc:  # a press, but with invalid text, out of range or too deep
        raise ValidationFailed(f"the button press in text: {exc}", field="text") from None
    caption = pressed.get("caption") if isinstance(pressed.get("caption"), str) else None
    out: dict[str, Any] = {"kind": "postback", "title": caption, "payload": payload}
    if target is not None:
        out["nextDialogstateId"] = target
    given = pressed.get("params")
    params = [
        {"key": p["key"], "value": p.get("value")}
        for p in (given if isinstance(given, list) else [])
        if isinstance(p, dict) and isinstance(p.get("key"), str) and p["key"]
    ]
    for index, param in enumerate(params):
        try:
            variable_key(param["key"])
        except ValueError as exc:
            raise ValidationFailed(
                f"the button press in text: params[{index}].key: {exc}", field="text"
            ) from None
    if params:
        out["sessionDataToSet"] = params
    return out
