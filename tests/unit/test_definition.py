"""Bot definitions: a definition that would emit an invalid BotMessage is refused when saved."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.bots import definition
from broker.core.errors import ValidationFailed
from tests.web_app import ADMIN, WebApp, web_app

FIXTURES = Path(__file__).parent.parent / "fixtures" / "botmessages"


def _with_message(message: Any, *, at: int = 2) -> dict[str, Any]:
    states: list[dict[str, Any]] = [{"id": f"s{i}"} for i in range(at + 1)]
    states[at]["messages"] = [message]
    return {"startState": "s0", "states": states}


def _empty_generic() -> dict[str, Any]:
    message = json.loads((FIXTURES / "generic_template.json").read_text())
    message["attachment"]["payload"]["elements"] = []
    return message


def test_every_spec_message_is_accepted_in_a_definition() -> None:
    messages = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))]
    checked = definition.validate(
        {"startState": "a", "states": [{"id": "a", "messages": messages}]}
    )
    assert checked["states"][0]["messages"] == messages


@pytest.mark.parametrize(
    ("given", "field"),
    [
        (
            _with_message(_empty_generic()),
            "definition.states[2].messages[0].attachment.payload.elements",
        ),
        (_with_message({"text": ""}, at=1), "definition.states[1].messages[0].text"),
        (_with_message({"type": "event"}), "definition.states[2].messages[0].name"),
        (_with_message("just a string"), "definition.states[2].messages[0]"),
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
            _with_message(
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


@pytest.fixture
def web() -> Iterator[WebApp]:
    with web_app() as made:
        yield made


def test_creating_a_bot_with_an_invalid_message_answers_422_naming_the_path(web: WebApp) -> None:
    answer = web.client.post(
        "/v1/bots", json={"name": "b", "definition": _with_message(_empty_generic())}, headers=ADMIN
    )
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == "validation_failed"
    assert answer.json["error"]["field"] == (
        "definition.states[2].messages[0].attachment.payload.elements"
    )


def test_saving_a_draft_with_an_invalid_message_answers_422_and_keeps_the_old_draft(
    web: WebApp,
) -> None:
    bot = web.bot()
    answer = web.client.put(
        f"/v1/bots/{bot['id']}/draft",
        json={"definition": _with_message(_empty_generic())},
        headers=ADMIN,
    )
    assert answer.status_code == 422
    assert answer.json["error"]["field"] == (
        "definition.states[2].messages[0].attachment.payload.elements"
    )
    assert web.client.get(f"/v1/bots/{bot['id']}", headers=ADMIN).json["draft"] == bot["draft"]
