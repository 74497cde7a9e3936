"""The Webhook message API's request body (docs/wire-contract.md §1a), and its normal form inside
Switchboard."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

_ID = Field(min_length=1, max_length=256)


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
    key: StrictStr = Field(min_length=1, max_length=256)
    value: Any = None


class PostbackMessage(_Strict):
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


class MessageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

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

    model_config = ConfigDict(extra="allow")

    conversationId: StrictStr | None = Field(default=None, min_length=1, max_length=256)
    user: User | None = None
    message: MessageBody
    sessionData: dict[str, Any] | None = None
    messageId: StrictStr | None = Field(default=None, min_length=1, max_length=256)

    @model_validator(mode="after")
    def _someone(self) -> InboundMessage:
        if self.conversationId is None and self.user is None:
            raise ValueError("name the user with conversationId or user.id")
        return self

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
