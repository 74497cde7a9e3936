"""Chatlayer's conversation-action forms become BotMessages; faults name their path."""

from __future__ import annotations

from typing import Any

import pytest

from broker.bots.payloads import PayloadKey
from broker.conversations.agent_forms import to_bot_messages
from broker.core.errors import ValidationFailed

KEY = PayloadKey.random()

URL_BUTTON = {"urlButton": {"title": "Docs", "url": "https://docs.example.com"}}
PHONE_BUTTON = {"phoneNumberButton": {"title": "Call", "phoneNumber": "+3212345678"}}
POSTBACK_BUTTON = {
    "postBackButton": {
        "title": "More info",
        "payload": {
            "nextDialogstateId": "info",
            "sessionDataToSet": [{"key": "topic", "value": "x"}],
        },
    }
}


def test_a_bot_message_passes_unchanged() -> None:
    message = {
        "text": "Hi",
        "quick_replies": [{"content_type": "text", "title": "A", "payload": "a"}],
    }
    assert to_bot_messages(message, "sendMessages[0]", KEY) == [message]


def test_a_text_template_is_one_text_per_text_message() -> None:
    form = {"textMessageTemplate": {"textMessages": [{"text": "One"}, {"text": "Two"}]}}
    assert to_bot_messages(form, "m", KEY) == [{"text": "One"}, {"text": "Two"}]


def test_a_button_template_puts_its_buttons_on_the_last_text() -> None:
    form = {
        "buttonTemplate": {
            "textMessages": [{"text": "First"}, {"text": "Pick one"}],
            "buttons": [URL_BUTTON, PHONE_BUTTON, POSTBACK_BUTTON],
        }
    }
    first, template = to_bot_messages(form, "m", KEY)
    assert first == {"text": "First"}
    payload = template["attachment"]["payload"]
    assert payload["template_type"] == "button"
    assert payload["text"] == "Pick one"
    url, phone, postback = payload["buttons"]
    assert url == {"type": "web_url", "title": "Docs", "url": "https://docs.example.com"}
    assert phone == {"type": "phone_number", "title": "Call", "payload": "+3212345678"}
    assert postback["type"] == "postback" and postback["title"] == "More info"
    assert KEY.open(postback["payload"]) == ("info", [{"key": "topic", "value": "x"}])


def test_a_quick_reply_template_keeps_image_and_string_payloads() -> None:
    form = {
        "quickReplyTemplate": {
            "textMessages": [{"text": "Which set?"}],
            "quickReplies": [
                {"title": "A", "payload": "set-a", "imageUrl": "https://img.example.com/a.png"},
                {"title": "B", "payload": {"nextDialogstateId": "b"}},
            ],
        }
    }
    (message,) = to_bot_messages(form, "m", KEY)
    assert message["text"] == "Which set?"
    a, b = message["quick_replies"]
    assert a == {
        "content_type": "text",
        "title": "A",
        "payload": "set-a",
        "image_url": "https://img.example.com/a.png",
    }
    assert KEY.open(b["payload"]) == ("b", [])


def test_an_attachment_template_is_a_media_attachment() -> None:
    form = {
        "attachmentTemplate": {"media": {"url": "https://img.example.com/1.png", "type": "image"}}
    }
    assert to_bot_messages(form, "m", KEY) == [
        {
            "attachment": {
                "type": "image",
                "payload": {"url": "https://img.example.com/1.png", "is_reusable": False},
            }
        }
    ]


def test_a_carousel_template_is_a_generic_template() -> None:
    form = {
        "carouselTemplate": {
            "elements": [
                {
                    "title": "One",
                    "subTitle": "first",
                    "imageUrl": "https://img.example.com/1.png",
                    "buttons": [URL_BUTTON],
                },
                {"title": "Two"},
            ]
        }
    }
    (message,) = to_bot_messages(form, "m", KEY)
    payload = message["attachment"]["payload"]
    assert payload["template_type"] == "generic"
    assert payload["elements"] == [
        {
            "title": "One",
            "subtitle": "first",
            "image_url": "https://img.example.com/1.png",
            "buttons": [{"type": "web_url", "title": "Docs", "url": "https://docs.example.com"}],
        },
        {"title": "Two"},
    ]


def test_a_list_template_is_a_list_template_with_its_button() -> None:
    form = {
        "listTemplate": {
            "size": "LARGE",
            "button": URL_BUTTON,
            "elements": [{"title": "A", "button": PHONE_BUTTON}, {"title": "B", "subTitle": "b"}],
        }
    }
    (message,) = to_bot_messages(form, "m", KEY)
    payload = message["attachment"]["payload"]
    assert payload["template_type"] == "list"
    assert payload["buttons"] == [
        {"type": "web_url", "title": "Docs", "url": "https://docs.example.com"}
    ]
    assert payload["elements"][0]["buttons"] == [
        {"type": "phone_number", "title": "Call", "payload": "+3212345678"}
    ]
    assert payload["elements"][1] == {"title": "B", "subtitle": "b"}


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ("hello", "sendMessages[2]"),
        ({"text": ""}, "sendMessages[2].text"),
        ({"txt": "typo"}, "sendMessages[2].text"),
        (
            {"textMessageTemplate": {"textMessages": []}},
            "sendMessages[2].textMessageTemplate.textMessages",
        ),
        (
            {"textMessageTemplate": {"textMessages": [{"text": "a"}]}, "text": "b"},
            "sendMessages[2]",
        ),
        (
            {
                "buttonTemplate": {
                    "textMessages": [{"text": "a"}],
                    "buttons": [{"urlButton": {"title": "x"}}],
                }
            },
            "sendMessages[2].buttonTemplate.buttons[0].urlButton.url",
        ),
        (
            {
                "buttonTemplate": {
                    "textMessages": [{"text": "a"}],
                    "buttons": [{"urlButton": {"title": "x", "url": "ftp://x"}}],
                }
            },
            "sendMessages[2].buttonTemplate.buttons[0].urlButton.url",
        ),
        (
            {"attachmentTemplate": {"media": {"url": "https://x", "type": "gif"}}},
            "sendMessages[2].attachmentTemplate.media.type",
        ),
        (
            {"listTemplate": {"elements": [{"title": "only one"}]}},
            "sendMessages[2].listTemplate.elements",
        ),
    ],
)
def test_a_faulty_item_names_its_path(item: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        to_bot_messages(item, "sendMessages[2]", KEY)
    assert raised.value.field == field


def test_a_form_whose_bot_message_is_faulty_is_named_by_the_form() -> None:
    button = {"postBackButton": {"title": "x", "payload": "p" * 3000}}
    item = {"buttonTemplate": {"textMessages": [{"text": "a"}], "buttons": [button]}}
    with pytest.raises(ValidationFailed) as raised:
        to_bot_messages(item, "sendMessages[0]", KEY)
    assert raised.value.field == "sendMessages[0].buttonTemplate"
    assert raised.value.message.startswith(
        "as the BotMessage it becomes, attachment.payload.buttons[0].payload: "
    )


def test_an_agent_s_odd_variable_key_is_refused_naming_it() -> None:
    button = {
        "postBackButton": {
            "title": "Go",
            "payload": {"nextDialogstateId": "s", "sessionDataToSet": [{"key": "\u202e"}]},
        }
    }
    form = {"buttonTemplate": {"textMessages": [{"text": "Pick"}], "buttons": [button]}}
    with pytest.raises(ValidationFailed) as refused:
        to_bot_messages(form, "sendMessages[0]", KEY)
    assert refused.value.field is not None
    assert refused.value.field.startswith("sendMessages[0].buttonTemplate.buttons[0]")
