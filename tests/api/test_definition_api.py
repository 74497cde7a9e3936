"""Bot definitions over the API: one with faults is refused (422) with all of them; API URLs
pass outbound safety when saved; the schema is published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker.bots import definition_v2, documents
from tests.web_app import ADMIN, WebApp
from tests.wire_fixtures import definition_saying, empty_generic_template

EXAMPLES = Path(__file__).parents[2] / "examples" / "bots"


def _template(payload: dict[str, Any]) -> dict[str, Any]:
    return {"attachment": {"type": "template", "payload": payload}}


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


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (
            _template(
                {
                    "template_type": "generic",
                    "elements": [{"title": "A", "item_url": "javascript:alert(1)"}],
                }
            ),
            "attachment.payload.elements[0].item_url",
        ),
        (
            _template(
                {
                    "template_type": "generic",
                    "elements": [{"title": "A", "image_url": "data:text/html,x"}],
                }
            ),
            "attachment.payload.elements[0].image_url",
        ),
        (
            {
                "text": "Pick",
                "quick_replies": [{"title": "A", "payload": "a", "image_url": "notaurl"}],
            },
            "quick_replies[0].image_url",
        ),
        (
            {"attachment": {"type": "image", "payload": {"url": "tel:123"}}},
            "attachment.payload.url",
        ),
    ],
)
def test_a_message_url_that_is_no_http_url_is_422_naming_it(
    web: WebApp, message: dict[str, Any], field: str
) -> None:
    answer = web.client.put(
        f"/v1/bots/{web.bot()['id']}/draft",
        json={"definition": definition_saying(message)},
        headers=ADMIN,
    )
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == f"definition.states[2].messages[0].{field}"


def pizza() -> dict[str, Any]:
    found: dict[str, Any] = documents.load(EXAMPLES / "pizza.yaml")
    return found


def test_a_definition_with_many_faults_answers_422_listing_them_all(web: WebApp) -> None:
    given = {
        "version": 2,
        "startState": "order",
        "states": {
            "order": {"say": "Which pizza?", "next": "pay"},
            "size": {"type": "input", "variable": "size", "next": "nowhere"},
        },
    }
    answer = web.client.post("/v1/bots", json={"name": "b", "definition": given}, headers=ADMIN)
    assert answer.get_json() == {
        "error": {
            "code": "validation_failed",
            "message": 'unknown state "pay" (and 1 more faults)',
            "field": "definition.states.order.next",
            "errors": [
                {"field": "definition.states.order.next", "message": 'unknown state "pay"'},
                {"field": "definition.states.size.next", "message": 'unknown state "nowhere"'},
            ],
        }
    }


def test_an_api_call_to_an_unsafe_address_is_refused_when_the_definition_is_saved(
    web: WebApp,
) -> None:
    bot = web.bot(pizza())  # the kitchen at 127.0.0.1: loopback is allowed in these tests
    unsafe = pizza()
    unsafe["variables"]["kitchen.url"] = "http://169.254.169.254/latest"
    answer = web.client.put(
        f"/v1/bots/{bot['id']}/draft", json={"definition": unsafe}, headers=ADMIN
    )
    assert answer.status_code == 422
    (fault,) = answer.get_json()["error"]["errors"]
    assert fault == {
        "field": "definition.states.place.request.url",
        "message": "169.254.169.254 resolves to 169.254.169.254, which outbound safety refuses "
        "(add it to SWITCHBOARD_OUTBOUND_ALLOWLIST to allow it)",
    }


def test_a_version_2_definition_is_kept_as_written(web: WebApp) -> None:
    bot = web.bot(pizza())
    assert web.client.get(f"/v1/bots/{bot['id']}", headers=ADMIN).get_json()["draft"] == pizza()


def test_the_schema_of_definitions_is_published(web: WebApp) -> None:
    answer = web.client.get("/v1/schemas/bot-definition")
    assert answer.status_code == 200
    assert answer.get_json() == definition_v2.schema()
    assert answer.get_json()["properties"]["version"]["const"] == 2


def _twice(name: str) -> bytes:
    """A body whose definition gives the state `a` twice (JSON readers keep the last)."""
    definition = (
        '{"version": 2, "startState": "a", "states": {"a": {"say": "1"}, "a": {"say": "2"}}}'
    )
    return f'{{{name}"definition": {definition}}}'.encode()


def test_a_definition_that_gives_a_key_twice_is_422_naming_it(web: WebApp) -> None:
    headers = {**ADMIN, "Content-Type": "application/json"}
    created = web.client.post("/v1/bots", data=_twice('"name": "a", '), headers=headers)
    assert created.status_code == 422
    assert created.get_json()["error"] == {
        "code": "validation_failed",
        "message": "is given twice",
        "field": "definition.states.a",
        "errors": [{"field": "definition.states.a", "message": "is given twice"}],
    }
    bot = web.bot()
    draft = web.client.put(f"/v1/bots/{bot['id']}/draft", data=_twice(""), headers=headers)
    assert draft.status_code == 422
    assert draft.get_json()["error"]["field"] == "definition.states.a"
    assert (
        web.client.get(f"/v1/bots/{bot['id']}", headers=ADMIN).get_json()["draft"] == bot["draft"]
    )
