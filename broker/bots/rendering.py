"""Filling `{{variables}}` into BotMessages and API requests, and turning button targets into
payloads.

What a render fills in is counted against a `Room` as it is built, so that a template that
names a large variable many times fails (TooLarge) before it makes a string of that size.

A BotMessage is checked again once filled in, since a variable may hold anything (a user sets
some): a text, title or subtitle past its limit is cut to it, ending with an ellipsis; a text
message that is empty or blank is not sent; any other fault (a URL that is no longer an http(s) URL,
an empty title) raises Unsendable, which fails the turn as TooLarge does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from broker.bots.botmessages import BOT_MESSAGE, SENT, TEXT_MAX, TITLE_MAX, with_wire_defaults
from broker.bots.payloads import PayloadKey
from broker.bots.variables import compact_json, lookup, text_size
from broker.core.defaults import ANSWER_MAX_BYTES
from broker.core.validation import first_fault

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")


#: Fields whose `{{variables}}` are filled in; a URL may start with one (see botmessages).
_RENDERED_FIELDS = ("text", "title", "subtitle", "url", "image_url", "item_url")
#: The longest each rendered text field of a message may be: a longer one is cut.
_CUT_AT = {"text": TEXT_MAX, "title": TITLE_MAX, "subtitle": TITLE_MAX}
_ELLIPSIS = "\u2026"


class TooLarge(ValueError):
    """What was filled in, or a value given to a variable, is over its limit of bytes."""


class Unsendable(ValueError):
    """A message is no BotMessage once its variables are filled in."""


class Room:
    """The bytes a render may still fill in, of `limit`; TooLarge, naming `what`, past them."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.left = limit

    def take(self, text: str) -> None:
        self.left -= text_size(text)
        if self.left < 0:
            raise TooLarge(f"{self.what} is over its limit of {self.limit} bytes")

    def swap(self, given_back: str, text: str) -> None:
        """`text` in place of `given_back`, which was taken."""
        self.left += text_size(given_back)
        self.take(text)

    def take_value(self, value: Any) -> None:
        """A JSON value: a string as its text, anything else as compact JSON."""
        if isinstance(value, str):
            self.take(value)
        elif value is not None:
            self.take(compact_json(value))


def answer_room() -> Room:
    """The room of what the engine fills in for one message's answer."""
    return Room(ANSWER_MAX_BYTES, "what the bot filled in for one message")


def render_value(value: Any, variables: dict[str, Any] | None, room: Room | None = None) -> Any:
    """`value` with its variables filled in; None fills in nothing (the text is taken as it
    is), as for what a custom action made."""
    if not isinstance(value, str):
        return value
    room = room or answer_room()
    # The template's own text first; each placeholder's is given back for its value.
    room.take(value)
    if variables is None or "{{" not in value:
        return value

    def fill(match: re.Match[str]) -> str:
        text = _text(lookup(variables, match.group(1), ""))
        room.swap(match.group(0), text)
        return text

    return PLACEHOLDER.sub(fill, value)


def render_json(value: Any, variables: dict[str, Any] | None, room: Room | None = None) -> Any:
    """A JSON value with every string's variables filled in (None: none is); a string that
    is one placeholder alone becomes the variable's value as it is (a number stays a number)."""
    room = room or answer_room()
    if isinstance(value, str):
        alone = PLACEHOLDER.fullmatch(value.strip())
        if alone and variables is not None:
            found = lookup(variables, alone.group(1))
            room.take_value(found)
            return found
        return render_value(value, variables, room)
    if isinstance(value, list):
        return [render_json(item, variables, room) for item in value]
    if isinstance(value, dict):
        return {key: render_json(item, variables, room) for key, item in value.items()}
    return value


def placeholders(text: str) -> list[str]:
    """The variables a text names."""
    return PLACEHOLDER.findall(text)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def render_message(
    message: dict[str, Any],
    variables: dict[str, Any] | None,
    payloads: PayloadKey,
    room: Room | None = None,
) -> dict[str, Any] | None:
    """A BotMessage as it goes out: variables filled in, button targets turned into payloads
    sealed with `payloads`, and the fields §3 always has that its author may leave out. None
    for a text message that is empty or blank once filled in: there is nothing to say.
    Unsendable for one that is no BotMessage any more, so that it never reaches an endpoint."""
    event = message.get("type") == "event"
    out: dict[str, Any] = with_wire_defaults(
        _Renderer(variables, payloads, room or answer_room(), cut=not event).message(message)
    )
    if out.keys() == {"text"} and not out["text"].strip():
        return None
    try:
        BOT_MESSAGE.validate_python(out, context=SENT)
    except ValidationError as exc:
        fault = _fault(exc, message)
        raise Unsendable(f"a message is no BotMessage once filled in: {fault}") from exc
    return out


def _fault(exc: ValidationError, message: dict[str, Any]) -> str:
    """The first fault: its field, what the author wrote there (which names the variables to
    blame) and what is wrong."""
    fault = first_fault(exc)
    written: Any = message
    for step in exc.errors()[0]["loc"]:
        try:
            written = written[step]
        except (KeyError, IndexError, TypeError):
            continue  # a union's tag, or a field the engine wrote (a payload): no step
    where = fault.field or "the message"
    if isinstance(written, str) and "{{" in written:
        where += f" (written {_cut(written, 100)!r})"
    return f"{where}: {fault.message}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


class _Renderer:
    def __init__(
        self, variables: dict[str, Any] | None, payloads: PayloadKey, room: Room, *, cut: bool
    ) -> None:
        self.variables = variables
        self.payloads = payloads
        self.room = room
        self.cut = cut

    def message(self, message: Any) -> Any:
        if isinstance(message, list):
            return [self.message(item) for item in message]
        if not isinstance(message, dict):
            return message
        variables, room = self.variables, self.room
        out: dict[str, Any] = {}
        for key, value in message.items():
            if key in ("goto", "params"):
                continue
            if key in _RENDERED_FIELDS:
                filled = render_value(value, variables, room)
                limit = _CUT_AT.get(key) if self.cut else None
                out[key] = _cut(filled, limit) if limit and isinstance(filled, str) else filled
            else:
                out[key] = self.message(value)
        if "goto" in message or "params" in message:
            params = [
                {**param, "value": render_json(param.get("value"), variables, room)}
                for param in message.get("params") or []
            ]
            out["payload"] = self.payloads.seal(message.get("goto"), params)
        return out
