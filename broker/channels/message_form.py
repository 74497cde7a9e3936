"""The Webhook message API's request body (docs/wire-contract.md §1a), and its normal form inside
Switchboard."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from broker.core.defaults import IDEMPOTENCY_KEY_MAX, SESSION_DATA_BYTES, SESSION_DATA_KEYS
from broker.core.validation import VariableKey, variable_key

_ID = Field(min_length=1, max_length=256)


# What the validators below require, said in the JSON Schema too (/openapi.json): these
# only shape the document, never what validates. A field given as null counts as absent,
# as the validators take it.


def _given(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """A subschema: `name` is there and not null."""
    prop = schema["properties"][name]
    kinds = [kind for kind in prop.get("anyOf", [prop]) if kind.get("type") != "null"]
    return {"required": [name], "properties": {name: kinds[0] if len(kinds) == 1 else prop}}


def _any_given(*names: str, description: str) -> Any:
    def extra(schema: dict[str, Any]) -> None:
        schema["anyOf"] = [_given(schema, name) for name in names]
        schema["description"] = description

    return extra


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=False)


class User(_Strict):
    id: StrictStr = _ID
    firstName: StrictStr | None = Field(default=None, max_length=256)
    lastName: StrictStr | None = Field(default=None, max_length=256)
    preferredLanguage: StrictStr | None = Field(default=None, max_length=35)


class TextMessage(_Strict):
    text: StrictStr = Field(min_length=1, max_length=10_000)


class KeyValue(BaseModel):
    key: VariableKey = Field(min_length=1, max_length=256)
    value: Any = None


class PostbackMessage(_Strict):
    model_config = ConfigDict(
        json_schema_extra=_any_given(
            "payload",
            "nextDialogstateId",
            description="A button or quick-reply press: it needs a `payload` or a "
            "`nextDialogstateId` (either or both).",
        )
    )

    title: StrictStr | None = Field(default=None, max_length=1000)
    payload: StrictStr | None = Field(default=None, max_length=10_000)
    nextDialogstateId: StrictStr | None = Field(default=None, max_length=256)
    sessionDataToSet: list[KeyValue] | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _target(self) -> PostbackMessage:
        if self.payload is None and self.nextDialogstateId is None:
            raise ValueError("a postbackMessage needs a payload or a nextDialogstateId")
        return self


class IntroMessage(_Strict):
    pass


class Coordinates(BaseModel):
    model_config = ConfigDict(strict=True)

    lat: float = Field(ge=-90, le=90)
    long: float = Field(ge=-180, le=180)


class LocationMessage(_Strict):
    coordinates: Coordinates


def _exactly_one_kind(schema: dict[str, Any]) -> None:
    schema["oneOf"] = [_given(schema, name) for name in schema["properties"]]
    schema["description"] = (
        "Exactly one of `textMessage`, `postbackMessage`, `introMessage`, `locationMessage` "
        "(one given as null counts as absent)."
    )


class MessageBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one_kind)

    textMessage: TextMessage | None = None
    postbackMessage: PostbackMessage | None = None
    introMessage: IntroMessage | None = None
    locationMessage: LocationMessage | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MessageBody:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "message holds exactly one of textMessage, postbackMessage, introMessage, "
                f"locationMessage (got {', '.join(given) or 'none'})"
            )
        return self


class InboundMessage(BaseModel):
    """POST /v1/channels/webhook/{channelId}/messages."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra=_any_given(
            "conversationId",
            "user",
            description="POST /v1/channels/webhook/{channelId}/messages. The user is named "
            "by `conversationId` or by `user` (with its `id`): one of the two is required; "
            "`conversationId` wins when both are given.",
        ),
    )

    # `user` first: the check that one of the two is given runs with `conversationId`, so
    # that the fault names it, and by then `user` is known.
    user: User | None = None
    conversationId: StrictStr | None = Field(
        default=None, min_length=1, max_length=256, validate_default=True
    )
    message: MessageBody
    sessionData: dict[str, Any] | None = Field(
        default=None,
        json_schema_extra={"maxProperties": SESSION_DATA_KEYS},
        description="Merged into the session's variables before the turn. At most "
        f"{SESSION_DATA_KEYS} keys and {SESSION_DATA_BYTES // 1024} KiB (keys and values as "
        "compact UTF-8 JSON) per message by default, counting a postback's "
        "`sessionDataToSet`, and what the conversation holds within its own limits: `422` "
        "past them.",
    )
    messageId: StrictStr | None = Field(default=None, min_length=1, max_length=IDEMPOTENCY_KEY_MAX)

    @field_validator("sessionData")
    @classmethod
    def _variable_keys(cls, data: dict[str, Any] | None) -> dict[str, Any] | None:
        for key in data or {}:
            variable_key(key)
        return data

    @field_validator("conversationId")
    @classmethod
    def _someone(cls, conversation_id: str | None, info: ValidationInfo) -> str | None:
        if conversation_id is None and info.data.get("user") is None:
            raise ValueError("name the user with conversationId or user.id")
        return conversation_id

    @property
    def conversation_id(self) -> str:
        return self.conversationId if self.conversationId is not None else self.user.id  # type: ignore[union-attr]


MessageKind = Literal["text", "postback", "intro", "location"]


def normalize(body: InboundMessage) -> dict[str, Any]:
    """The message in Switchboard's own form: a `kind` and that kind's fields."""
    message = body.message
    out: dict[str, Any]
    if message.textMessage is not None:
        out = {"kind": "text", "text": message.textMessage.text}
    elif message.postbackMessage is not None:
        postback = message.postbackMessage
        out = {"kind": "postback", "title": postback.title, "payload": postback.payload}
        if postback.nextDialogstateId is not None:
            out["nextDialogstateId"] = postback.nextDialogstateId
        if postback.sessionDataToSet is not None:
            out["sessionDataToSet"] = [item.model_dump() for item in postback.sessionDataToSet]
    elif message.locationMessage is not None:
        coordinates = message.locationMessage.coordinates
        out = {
            "kind": "location",
            "coordinates": {"lat": coordinates.lat, "long": coordinates.long},
        }
    else:
        out = {"kind": "intro"}
    if body.sessionData:
        out["sessionData"] = body.sessionData
    if body.user is not None:
        out["user"] = body.user.model_dump(exclude_none=True)
    return out
