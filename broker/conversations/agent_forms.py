"""What an agent may send into a conversation: BotMessages, or Chatlayer's conversation actions.

Chatlayer's example agent server sends each message in a "conversation action" form
(`textMessageTemplate`, `buttonTemplate`, `quickReplyTemplate`, `attachmentTemplate`,
`carouselTemplate`, `listTemplate`). Each becomes one or more BotMessages
(docs/wire-contract.md §3):

- `textMessages` become one text message each. In a button or quick-reply template
  the last text carries the buttons or quick replies, the ones before it go first.
- `urlButton` -> `web_url`, `phoneNumberButton` -> `phone_number` (the number is the
  payload), `postBackButton` -> `postback`. A postback payload that is an object
  (`{"nextDialogstateId", "sessionDataToSet"}`) becomes an opaque payload, sealed with the
  conversation's key, that leads there when pressed, as the bot's own buttons do; a string
  payload is kept as it is.
- `carouselTemplate` -> a generic template; `listTemplate` -> a list template, each
  element's `button` becoming its one button and the top `button` the list's button
  (`size` has no counterpart and is dropped); `subTitle` -> `subtitle`,
  `imageUrl` -> `image_url`.
- `attachmentTemplate` `{"media": {"url", "type"}}` -> a media attachment.

An agent's messages go out as written: `{{...}}` in them is text, so each URL is an http(s)
URL (a BotMessage's web_url button may also be `tel:`), validated as sent (`botmessages.SENT`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, model_validator

from broker.bots.botmessages import SENT, AttachmentMessage, EventMessage, TextMessage
from broker.bots.payloads import PayloadKey
from broker.core.errors import ValidationFailed
from broker.core.validation import VariableKey, first_fault, parse

_TITLE = Field(min_length=1, max_length=640)
_URL = Field(min_length=1, max_length=2048, pattern=r"^https?://")
_IMAGE_URL = Field(default=None, min_length=1, max_length=2048, pattern=r"^https?://")


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Text(_Form):
    text: StrictStr = Field(min_length=1, max_length=4096)


class KeyValue(_Form):
    key: VariableKey = Field(min_length=1, max_length=256)
    value: Any = None


class PostbackTarget(_Form):
    nextDialogstateId: StrictStr | None = Field(default=None, min_length=1, max_length=256)
    sessionDataToSet: list[KeyValue] | None = Field(default=None, max_length=100)


class UrlButton(_Form):
    title: StrictStr = _TITLE
    url: StrictStr = _URL


class PhoneNumberButton(_Form):
    title: StrictStr = _TITLE
    phoneNumber: StrictStr = Field(min_length=1, max_length=64)


class PostBackButton(_Form):
    title: StrictStr = _TITLE
    payload: StrictStr | PostbackTarget


class ActionButton(_Form):
    urlButton: UrlButton | None = None
    phoneNumberButton: PhoneNumberButton | None = None
    postBackButton: PostBackButton | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ActionButton:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "a button holds exactly one of urlButton, phoneNumberButton, postBackButton"
            )
        return self


class TextMessageTemplate(_Form):
    textMessages: list[Text] = Field(min_length=1, max_length=20)


class ButtonTemplate(_Form):
    textMessages: list[Text] = Field(min_length=1, max_length=20)
    buttons: list[ActionButton] = Field(min_length=1, max_length=3)


class QuickReply(_Form):
    title: StrictStr = _TITLE
    payload: StrictStr | PostbackTarget
    imageUrl: StrictStr | None = _IMAGE_URL


class QuickReplyTemplate(_Form):
    textMessages: list[Text] = Field(min_length=1, max_length=20)
    quickReplies: list[QuickReply] = Field(min_length=1, max_length=13)


class Media(_Form):
    url: StrictStr = _URL
    type: Literal["image", "video", "audio", "file"]


class AttachmentTemplate(_Form):
    media: Media


class CarouselElement(_Form):
    title: StrictStr = _TITLE
    subTitle: StrictStr | None = Field(default=None, max_length=640)
    imageUrl: StrictStr | None = _IMAGE_URL
    buttons: list[ActionButton] | None = Field(default=None, max_length=3)


class CarouselTemplate(_Form):
    elements: list[CarouselElement] = Field(min_length=1, max_length=10)


class ListElement(_Form):
    title: StrictStr = _TITLE
    subTitle: StrictStr | None = Field(default=None, max_length=640)
    imageUrl: StrictStr | None = _IMAGE_URL
    button: ActionButton | None = None


class ListTemplate(_Form):
    size: StrictStr | None = None
    button: ActionButton | None = None
    elements: list[ListElement] = Field(min_length=2, max_length=4)


def _sealed(message: Any, payloads: PayloadKey) -> Any:
    """`message` with each target a form gave (a PostbackTarget) sealed as a payload."""
    if isinstance(message, PostbackTarget):
        params = [item.model_dump() for item in message.sessionDataToSet or []]
        return payloads.seal(message.nextDialogstateId, params)
    if isinstance(message, list):
        return [_sealed(item, payloads) for item in message]
    if isinstance(message, dict):
        return {key: _sealed(value, payloads) for key, value in message.items()}
    return message


def _button(button: ActionButton) -> dict[str, Any]:
    if button.urlButton is not None:
        return {"type": "web_url", "title": button.urlButton.title, "url": button.urlButton.url}
    if button.phoneNumberButton is not None:
        phone = button.phoneNumberButton
        return {"type": "phone_number", "title": phone.title, "payload": phone.phoneNumber}
    postback = button.postBackButton
    assert postback is not None  # one of the three, by ActionButton's validator
    return {"type": "postback", "title": postback.title, "payload": postback.payload}


def _texts(texts: list[Text]) -> list[dict[str, Any]]:
    return [{"text": item.text} for item in texts]


def _template(payload: dict[str, Any]) -> dict[str, Any]:
    return {"attachment": {"type": "template", "payload": payload}}


def _element(
    title: str, subtitle: str | None, image_url: str | None, buttons: list[ActionButton]
) -> dict[str, Any]:
    out: dict[str, Any] = {"title": title}
    if subtitle is not None:
        out["subtitle"] = subtitle
    if image_url is not None:
        out["image_url"] = image_url
    if buttons:
        out["buttons"] = [_button(b) for b in buttons]
    return out


def _from_text(form: TextMessageTemplate) -> list[dict[str, Any]]:
    return _texts(form.textMessages)


def _from_buttons(form: ButtonTemplate) -> list[dict[str, Any]]:
    *first, last = form.textMessages
    buttons = [_button(b) for b in form.buttons]
    return [
        *_texts(first),
        _template({"template_type": "button", "text": last.text, "buttons": buttons}),
    ]


def _from_quick_replies(form: QuickReplyTemplate) -> list[dict[str, Any]]:
    *first, last = form.textMessages
    replies: list[dict[str, Any]] = []
    for reply in form.quickReplies:
        item: dict[str, Any] = {
            "content_type": "text",
            "title": reply.title,
            "payload": reply.payload,
        }
        if reply.imageUrl is not None:
            item["image_url"] = reply.imageUrl
        replies.append(item)
    return [*_texts(first), {"text": last.text, "quick_replies": replies}]


def _from_attachment(form: AttachmentTemplate) -> list[dict[str, Any]]:
    media = form.media
    return [
        {"attachment": {"type": media.type, "payload": {"url": media.url, "is_reusable": False}}}
    ]


def _from_carousel(form: CarouselTemplate) -> list[dict[str, Any]]:
    elements = [_element(e.title, e.subTitle, e.imageUrl, e.buttons or []) for e in form.elements]
    return [_template({"template_type": "generic", "elements": elements})]


def _from_list(form: ListTemplate) -> list[dict[str, Any]]:
    elements = [
        _element(e.title, e.subTitle, e.imageUrl, [e.button] if e.button else [])
        for e in form.elements
    ]
    payload: dict[str, Any] = {"template_type": "list", "elements": elements}
    if form.button is not None:
        payload["buttons"] = [_button(form.button)]
    return [_template(payload)]


_Converter = Callable[[Any], list[dict[str, Any]]]

#: Each conversation-action form: its model, and how it becomes BotMessages.
FORMS: dict[str, tuple[type[BaseModel], _Converter]] = {
    "textMessageTemplate": (TextMessageTemplate, _from_text),
    "buttonTemplate": (ButtonTemplate, _from_buttons),
    "quickReplyTemplate": (QuickReplyTemplate, _from_quick_replies),
    "attachmentTemplate": (AttachmentTemplate, _from_attachment),
    "carouselTemplate": (CarouselTemplate, _from_carousel),
    "listTemplate": (ListTemplate, _from_list),
}


def to_bot_messages(item: Any, path: str, payloads: PayloadKey) -> list[dict[str, Any]]:
    """One item of `sendMessages` as the BotMessages it stands for, validated; the payloads
    it makes are sealed with the conversation's key, `payloads`.

    Faults raise ValidationFailed naming their path under `path` (e.g. `sendMessages[0]`).
    """
    if not isinstance(item, dict):
        raise ValidationFailed("a message is a JSON object", field=path)
    named = [name for name in FORMS if name in item]
    if not named:
        converted = [item]
    elif len(item) != 1:
        raise ValidationFailed(
            f"a conversation action holds exactly one of {', '.join(FORMS)}", field=path
        )
    else:
        model, convert = FORMS[named[0]]
        form_path = f"{path}.{named[0]}"
        converted = convert(parse(model, item[named[0]], prefix=form_path))
        converted = [_sealed(message, payloads) for message in converted]
        try:
            for message in converted:
                _check(message, "")
        except ValidationFailed as fault:
            # The path is in the BotMessage the form became, not in what the caller sent.
            where = f"{fault.field}: " if fault.field else ""
            raise ValidationFailed(
                f"as the BotMessage it becomes, {where}{fault.message}", field=form_path
            ) from fault
        return converted
    for message in converted:
        _check(message, path)
    return converted


def _check(message: dict[str, Any], path: str) -> None:
    """Validate against the BotMessage kind the keys point to, so a fault names its field."""
    model: type[BaseModel] = TextMessage
    if "attachment" in message:
        model = AttachmentMessage
    elif "type" in message:
        model = EventMessage
    try:
        model.model_validate(message, context=SENT)
    except ValidationError as exc:
        raise first_fault(exc, path) from exc
