"""BotMessage objects (docs/wire-contract.md §3): what `message` holds in every outbound document.

In a bot definition a postback button or quick reply may name its target with `goto`
and `params` instead of a `payload`; the engine turns those into an opaque payload. A URL of
a definition may also start with a `{{placeholder}}`, filled in at turn time; a message as it
is sent (validated with the context SENT: a rendered one, an agent's) has real URLs only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)

#: The longest text of a message, and of a title or subtitle, in characters.
TEXT_MAX = 4096
TITLE_MAX = 640
_TITLE = Field(min_length=1, max_length=TITLE_MAX)

#: The validation context of a message as it is sent, placeholders filled in or none meant.
SENT: dict[str, Any] = {"sent": True}


def _starting_with(*schemes: str) -> Callable[[str, ValidationInfo], str]:
    """The check of a URL with one of `schemes`; in a definition it may also start with a
    `{{placeholder}}`, which the engine fills in and checks again before the message goes."""
    named = f"{', '.join(schemes[:-1])} or {schemes[-1]}"

    def check(value: str, info: ValidationInfo) -> str:
        if value.startswith(schemes):
            return value
        if (info.context or {}).get("sent"):
            raise ValueError(f"a URL starts with {named}")
        if value.startswith("{{"):
            return value
        raise ValueError(f"a URL starts with {named}, or with a {{{{placeholder}}}}")

    return check


#: Where a web_url button or a default action leads: a web page, or a phone number to call.
LinkUrl = Annotated[
    StrictStr,
    Field(min_length=1, max_length=2048, json_schema_extra={"pattern": r"^(https?://|tel:|\{\{)"}),
    AfterValidator(_starting_with("http://", "https://", "tel:")),
]
#: What a message shows or opens: an image, a medium, an element's page.
WebUrl = Annotated[
    StrictStr,
    Field(min_length=1, max_length=2048, json_schema_extra={"pattern": r"^(https?://|\{\{)"}),
    AfterValidator(_starting_with("http://", "https://")),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def chosen_by(field: str, tags: Mapping[str, str]) -> Callable[[Any], str | None]:
    """Pick a union member by the value of `field`, so that a fault names that member's
    fields only. Tags start with a capital: `validation.field_path` leaves them out."""

    def choose(value: Any) -> str | None:
        given = value.get(field) if isinstance(value, dict) else getattr(value, field, None)
        return tags.get(given) if isinstance(given, str) else None

    return choose


def _one_of(field: str, tags: Mapping[str, str]) -> Discriminator:
    return Discriminator(
        chosen_by(field, tags),
        custom_error_type="unknown_kind",
        custom_error_message=f"{field} is one of {', '.join(tags)}",
    )


class Param(_Model):
    key: StrictStr = Field(min_length=1, max_length=256)
    value: Any = None


class _Targeted(_Model):
    """Something that leads somewhere when pressed: a payload, or `goto` and `params`."""

    payload: StrictStr | None = Field(default=None, max_length=2000)
    goto: StrictStr | None = Field(default=None, min_length=1, max_length=256)
    params: list[Param] | None = None


class PostbackButton(_Targeted):
    type: Literal["postback"]
    title: StrictStr = _TITLE

    @model_validator(mode="after")
    def _needs_target(self) -> PostbackButton:
        if self.payload is None and self.goto is None:
            raise ValueError("a postback button needs a payload or a goto")
        return self


class UrlButton(_Model):
    type: Literal["web_url"]
    title: StrictStr = _TITLE
    url: LinkUrl


class PhoneButton(_Model):
    type: Literal["phone_number"]
    title: StrictStr = _TITLE
    payload: StrictStr = Field(min_length=1, max_length=64)


class ShareButton(_Model):
    type: Literal["element_share"]
    title: StrictStr | None = Field(default=None, max_length=TITLE_MAX)


Button = Annotated[
    Annotated[PostbackButton, Tag("Postback")]
    | Annotated[UrlButton, Tag("WebUrl")]
    | Annotated[PhoneButton, Tag("Phone")]
    | Annotated[ShareButton, Tag("Share")],
    _one_of(
        "type",
        {
            "postback": "Postback",
            "web_url": "WebUrl",
            "phone_number": "Phone",
            "element_share": "Share",
        },
    ),
]


class QuickReply(_Targeted):
    content_type: Literal["text"] = "text"
    title: StrictStr = _TITLE
    image_url: WebUrl | None = None

    @model_validator(mode="after")
    def _needs_target(self) -> QuickReply:
        if self.payload is None and self.goto is None:
            raise ValueError("a quick reply needs a payload or a goto")
        return self


class TextMessage(_Model):
    text: StrictStr = Field(min_length=1, max_length=TEXT_MAX)
    quick_replies: list[QuickReply] | None = Field(default=None, min_length=1, max_length=13)


class ButtonPayload(_Model):
    template_type: Literal["button"]
    text: StrictStr = Field(min_length=1, max_length=TEXT_MAX)
    buttons: list[Button] = Field(min_length=1, max_length=3)


class DefaultAction(_Model):
    type: Literal["web_url"]
    url: LinkUrl


class Element(_Model):
    title: StrictStr = _TITLE
    subtitle: StrictStr | None = Field(default=None, max_length=TITLE_MAX)
    image_url: WebUrl | None = None
    item_url: WebUrl | None = None
    default_action: DefaultAction | None = None
    buttons: list[Button] | None = Field(default=None, max_length=3)


class GenericPayload(_Model):
    template_type: Literal["generic"]
    elements: list[Element] = Field(min_length=1, max_length=10)


class ListPayload(_Model):
    template_type: Literal["list"]
    elements: list[Element] = Field(min_length=2, max_length=4)
    buttons: list[Button] | None = Field(default=None, max_length=1)


TemplatePayload = Annotated[
    Annotated[ButtonPayload, Tag("Button")]
    | Annotated[GenericPayload, Tag("Generic")]
    | Annotated[ListPayload, Tag("List")],
    _one_of("template_type", {"button": "Button", "generic": "Generic", "list": "List"}),
]


class TemplateAttachment(_Model):
    type: Literal["template"]
    payload: TemplatePayload


class MediaPayload(_Model):
    url: WebUrl
    is_reusable: bool = False


class MediaAttachment(_Model):
    type: Literal["image", "video", "audio", "file"]
    payload: MediaPayload


Attachment = Annotated[
    Annotated[TemplateAttachment, Tag("Template")] | Annotated[MediaAttachment, Tag("Media")],
    _one_of(
        "type",
        {
            "template": "Template",
            "image": "Media",
            "video": "Media",
            "audio": "Media",
            "file": "Media",
        },
    ),
]


class AttachmentMessage(_Model):
    attachment: Attachment
    quick_replies: list[QuickReply] | None = Field(default=None, min_length=1, max_length=13)


class EventMessage(_Model):
    type: Literal["event"]
    name: StrictStr = Field(min_length=1, max_length=256)
    data: Any = None


def _message_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "attachment" in value:
            return "Attachment"
        return "Event" if value.get("type") == "event" else "Text"
    if isinstance(value, AttachmentMessage):
        return "Attachment"
    return "Event" if isinstance(value, EventMessage) else "Text"


#: A text (with quick replies or not), an attachment, or an event.
BotMessage = Annotated[
    Annotated[TextMessage, Tag("Text")]
    | Annotated[AttachmentMessage, Tag("Attachment")]
    | Annotated[EventMessage, Tag("Event")],
    Discriminator(_message_kind),
]
#: Validates one BotMessage; with `context=SENT`, as it goes out.
BOT_MESSAGE: TypeAdapter[Any] = TypeAdapter(BotMessage)


_MEDIA = ("image", "video", "audio", "file")


def with_wire_defaults(message: Any) -> Any:
    """`message` (or a list of them) with the fields §3 always sends that a definition or an
    agent may leave out: a quick reply's `content_type` and a media payload's `is_reusable`,
    which receivers written for the hosted product read."""
    if isinstance(message, list):
        return [with_wire_defaults(item) for item in message]
    if not isinstance(message, dict):
        return message
    replies = message.get("quick_replies")
    if isinstance(replies, list):
        message["quick_replies"] = [
            {"content_type": "text", **reply} if isinstance(reply, dict) else reply
            for reply in replies
        ]
    attachment = message.get("attachment")
    if isinstance(attachment, dict) and attachment.get("type") in _MEDIA:
        payload = attachment.get("payload")
        if isinstance(payload, dict):
            attachment["payload"] = {**payload, "is_reusable": payload.get("is_reusable", False)}
    return message
