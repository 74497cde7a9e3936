"""BotMessage models (docs/wire-contract.md §3), checked against fixtures written from the wire
contract."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from broker.bots.botmessages import SENT, BotMessage
from broker.bots.payloads import PayloadKey
from broker.bots.rendering import render_message
from broker.core.validation import first_fault
from tests.wire_fixtures import BOT_MESSAGE_KINDS, bot_message

bot_message_adapter: TypeAdapter[BotMessage] = TypeAdapter(BotMessage)


def fault_of(message: Any) -> str | None:
    with pytest.raises(ValidationError) as raised:
        bot_message_adapter.validate_python(message)
    return first_fault(raised.value).field


def test_there_is_a_fixture_for_every_kind_of_the_spec() -> None:
    assert BOT_MESSAGE_KINDS == [
        "button_template",
        "event",
        "generic_template",
        "list_template",
        "media_audio",
        "media_file",
        "media_image",
        "media_video",
        "quick_replies",
        "text",
    ]


@pytest.mark.parametrize("kind", BOT_MESSAGE_KINDS)
def test_each_spec_message_validates_and_keeps_its_exact_fields(kind: str) -> None:
    message = bot_message(kind)
    model = bot_message_adapter.validate_python(message)
    assert bot_message_adapter.dump_python(model, exclude_none=True) == message


def _generic_with_four_buttons() -> dict[str, Any]:
    message = bot_message("generic_template")
    element = message["attachment"]["payload"]["elements"][1]
    element["buttons"].append(copy.deepcopy(element["buttons"][0]))
    return message


def _list_with(count: int) -> dict[str, Any]:
    message = bot_message("list_template")
    first = message["attachment"]["payload"]["elements"][0]
    message["attachment"]["payload"]["elements"] = [copy.deepcopy(first) for _ in range(count)]
    return message


def _without(name: str, *path: str | int) -> dict[str, Any]:
    message = bot_message(name)
    holder: Any = message
    for step in path[:-1]:
        holder = holder[step]
    del holder[path[-1]]
    return message


def _with(name: str, value: str, *path: str | int) -> dict[str, Any]:
    message = bot_message(name)
    holder: Any = message
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    return message


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"text": ""}, "text"),
        ({}, "text"),
        (_generic_with_four_buttons(), "attachment.payload.elements[1].buttons"),
        (_list_with(1), "attachment.payload.elements"),
        (_list_with(5), "attachment.payload.elements"),
        (_without("button_template", "attachment", "payload", "buttons"), None),
        (_without("media_image", "attachment", "payload", "url"), "attachment.payload.url"),
        (_without("quick_replies", "quick_replies", 0, "payload"), "quick_replies[0]"),
        (_without("quick_replies", "quick_replies", 0, "title"), "quick_replies[0].title"),
        (_without("event", "name"), "name"),
        ({"attachment": {"type": "gif", "payload": {"url": "https://x"}}}, "attachment"),
        (
            {"attachment": {"type": "template", "payload": {"template_type": "receipt"}}},
            "attachment.payload",
        ),
        (
            {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": "t",
                        "buttons": [{"type": "postback", "title": "no target"}],
                    },
                }
            },
            "attachment.payload.buttons[0]",
        ),
        ({"text": "hi", "colour": "red"}, "colour"),
        (
            _with(
                "generic_template",
                "javascript:alert(1)",
                "attachment",
                "payload",
                "elements",
                0,
                "item_url",
            ),
            "attachment.payload.elements[0].item_url",
        ),
        (
            _with(
                "generic_template",
                "data:text/html,x",
                "attachment",
                "payload",
                "elements",
                1,
                "image_url",
            ),
            "attachment.payload.elements[1].image_url",
        ),
        (
            _with("list_template", "", "attachment", "payload", "elements", 0, "image_url"),
            "attachment.payload.elements[0].image_url",
        ),
        (
            _with("quick_replies", "notaurl", "quick_replies", 0, "image_url"),
            "quick_replies[0].image_url",
        ),
        (_with("media_image", "tel:123", "attachment", "payload", "url"), "attachment.payload.url"),
        (
            _with("button_template", "javascript:x", "attachment", "payload", "buttons", 1, "url"),
            "attachment.payload.buttons[1].url",
        ),
    ],
)
def test_an_invalid_message_is_refused_naming_the_faulty_path(
    message: dict[str, Any], field: str | None
) -> None:
    found = fault_of(message)
    if field is None:
        assert found is not None and found.startswith("attachment.payload.buttons")
    else:
        assert found == field


def test_a_definition_button_may_name_its_target_instead_of_a_payload() -> None:
    message = {
        "text": "Pick",
        "quick_replies": [{"title": "Yes", "goto": "yes", "params": [{"key": "a", "value": 1}]}],
    }
    bot_message_adapter.validate_python(message)


@pytest.mark.parametrize(
    "message",
    [
        _with("media_video", "{{clip}}", "attachment", "payload", "url"),
        _with("quick_replies", "{{pic}}", "quick_replies", 0, "image_url"),
        _with("generic_template", "{{page}}", "attachment", "payload", "elements", 0, "item_url"),
    ],
)
def test_a_definition_s_url_may_be_a_placeholder_and_a_message_as_sent_may_not(
    message: dict[str, Any],
) -> None:
    bot_message_adapter.validate_python(message)
    with pytest.raises(ValidationError, match="a URL starts with http:// or https://"):
        bot_message_adapter.validate_python(message, context=SENT)


def test_a_url_button_may_call_a_phone_number() -> None:
    call = _with("button_template", "tel:+3221234567", "attachment", "payload", "buttons", 1, "url")
    bot_message_adapter.validate_python(call, context=SENT)


def test_what_goes_out_has_the_fields_an_author_may_leave_out() -> None:
    written: list[dict[str, Any]] = [
        {"text": "Pick", "quick_replies": [{"title": "Yes", "goto": "yes"}]},
        {"attachment": {"type": "image", "payload": {"url": "https://e.example/a.png"}}},
        {
            "attachment": {
                "type": "file",
                "payload": {"url": "https://e.example/a", "is_reusable": True},
            }
        },
    ]

    reply, image, kept = [
        render_message(message, {}, PayloadKey.random()) or {} for message in written
    ]

    assert reply["quick_replies"][0]["content_type"] == "text"
    assert reply["quick_replies"][0]["payload"].startswith("sb2.")
    assert image["attachment"]["payload"] == {
        "url": "https://e.example/a.png",
        "is_reusable": False,
    }
    assert kept["attachment"]["payload"]["is_reusable"] is True
