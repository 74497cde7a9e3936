"""BotMessage objects (SPEC section 3): what `message` holds in every outbound document.

In a bot definition a postback button or quick reply may name its target with `goto`
and `params` instead of a `payload`; the engine turns those into an opaque payload.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, TypeAdapter, model_validator

_TITLE = Field(min_length=1, max_length=640)
_URL = Field(min_length=1, max_length=2048, pattern=r"^(https?://|tel:|\{\{)")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    url: StrictStr = _URL


class PhoneButton(_Model):
    type: Literal["phone_number"]
    title: StrictStr = _TITLE
    payload: StrictStr = Field(min_length=1, max_length=64)


class ShareButton(_Model):
    type: Literal["element_share"]
    title: StrictStr | None = Field(default=None, max_length=640)


Button = Annotated[
    PostbackButton | UrlButton | PhoneButton | ShareButton, Field(discriminator="type")
]


class QuickReply(_Targeted):
    content_type: Literal["text"] = "text"
    title: StrictStr = _TITLE
    image_url: StrictStr | None = Field(default=None, max_length=2048)


class TextMessage(_Model):
    text: StrictStr = Field(min_length=1, max_length=4096)
    quick_replies: list[QuickReply] | None = Field(default=None, min_length=1, max_length=13)


class ButtonPayload(_Model):
    template_type: Literal["button"]
    text: StrictStr = Field(min_length=1, max_length=4096)
    buttons: list[Button] = Field(min_length=1, max_length=3)


class DefaultAction(_Model):
    type: Literal["web_url"]
    url: StrictStr = _URL


class Element(_Model):
    title: StrictStr = _TITLE
    subtitle: StrictStr | None = Field(default=None, max_length=640)
    image_url: StrictStr | None = Field(default=None, max_length=2048)
    item_url: StrictStr | None = Field(default=None, max_length=2048)
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
    ButtonPayload | GenericPayload | ListPayload, Field(discriminator="template_type")
]


class TemplateAttachment(_Model):
    type: Literal["template"]
    payload: TemplatePayload


class MediaPayload(_Model):
    url: StrictStr = _URL
    is_reusable: bool = False


class MediaAttachment(_Model):
    type: Literal["image", "video", "audio", "file"]
    payload: MediaPayload


Attachment = Annotated[TemplateAttachment | MediaAttachment, Field(discriminator="type")]


class AttachmentMessage(_Model):
    attachment: Attachment
    quick_replies: list[QuickReply] | None = Field(default=None, min_length=1, max_length=13)


class EventMessage(_Model):
    type: Literal["event"]
    name: StrictStr = Field(min_length=1, max_length=256)
    data: Any = None


BotMessage = TextMessage | AttachmentMessage | EventMessage

bot_message_adapter: TypeAdapter[BotMessage] = TypeAdapter(BotMessage)
