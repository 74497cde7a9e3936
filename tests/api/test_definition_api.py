"""Bot definitions over the API: one that would emit an invalid BotMessage is refused (422)."""

from __future__ import annotations

from tests.web_app import ADMIN, WebApp
from tests.wire_fixtures import definition_saying, empty_generic_template


def test_creating_a_bot_with_an_invalid_message_answers_422_naming_the_path(web: WebApp) -> None:
    answer = web.client.post(
        "/v1/bots",
        json={"name": "b", "definition": definition_saying(empty_generic_template())},
        headers=ADMIN,
    )
    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] == "validation_failed"
    assert answer.get_json()["error"]["field"] == (
        "definition.states[2].messages[0].attachment.payload.elements"
    )


def test_saving_a_draft_with_an_invalid_message_answers_422_and_keeps_the_old_draft(
    web: WebApp,
) -> None:
    bot = web.bot()
    answer = web.client.put(
        f"/v1/bots/{bot['id']}/draft",
        json={"definition": definition_saying(empty_generic_template())},
        headers=ADMIN,
    )
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == (
        "definition.states[2].messages[0].attachment.payload.elements"
    )
    assert (
        web.client.get(f"/v1/bots/{bot['id']}", headers=ADMIN).get_json()["draft"] == bot["draft"]
    )
