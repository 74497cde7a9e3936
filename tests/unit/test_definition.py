"""Bot definitions: a definition that would emit an invalid BotMessage is refused."""

from __future__ import annotations

from typing import Any

import pytest

from broker.bots import definition
from broker.core.errors import ValidationFailed
from tests.wire_fixtures import (
    BOT_MESSAGE_KINDS,
    bot_message,
    definition_saying,
    empty_generic_template,
)


def test_every_spec_message_is_accepted_in_a_definition() -> None:
    messages = [bot_message(kind) for kind in BOT_MESSAGE_KINDS]
    checked = definition.validate(
        {"startState": "a", "states": [{"id": "a", "messages": messages}]}
    )
    assert checked["states"][0]["messages"] == messages


@pytest.mark.parametrize(
    ("given", "field"),
    [
        (
            definition_saying(empty_generic_template()),
            "definition.states[2].messages[0].attachment.payload.elements",
        ),
        (definition_saying({"text": ""}, at=1), "definition.states[1].messages[0].text"),
        (definition_saying({"type": "event"}), "definition.states[2].messages[0].name"),
        (definition_saying("just a string"), "definition.states[2].messages[0]"),
        (
            {"startState": "a", "states": [{"id": "a", "actions": [{"type": "setVariable"}]}]},
            "definition.states[0].actions[0].key",
        ),
        (
            {"startState": "a", "states": [{"id": "a", "actions": [{"type": "teleport"}]}]},
            "definition.states[0].actions[0]",
        ),
        ({"startState": "nowhere", "states": [{"id": "a"}]}, "definition.startState"),
        (
            {"startState": "a", "states": [{"id": "a", "next": "b"}]},
            "definition.states[0].next",
        ),
        (
            definition_saying(
                {"text": "Pick", "quick_replies": [{"title": "Go", "goto": "missing"}]}, at=0
            ),
            "definition.states[0].messages[0].quick_replies[0].goto",
        ),
        ({"startState": "a", "states": []}, "definition.states"),
        ({"template": "parrot"}, "definition.template"),
        ([], "definition"),
    ],
)
def test_an_invalid_definition_is_refused_naming_the_faulty_path(given: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        definition.validate(given)
    assert raised.value.field == field
