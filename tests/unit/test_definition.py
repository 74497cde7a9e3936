"""Bot definitions: validation lists every fault with its path; version 1 still validates; the
published schema is the one the code checks against."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from broker.bots import definition, definition_v2, documents
from broker.bots.faults import DefinitionInvalid
from broker.bots.templates import TEMPLATES
from broker.core.errors import ValidationFailed
from tests.wire_fixtures import (
    BOT_MESSAGE_KINDS,
    bot_message,
    definition_saying,
    empty_generic_template,
)

ROOT = Path(__file__).parents[2]
SCHEMA_FILE = ROOT / "docs" / "bot-definition.schema.json"
EXAMPLES = ROOT / "examples" / "bots"


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


def v2(**fields: Any) -> dict[str, Any]:
    return {"version": 2, "startState": "a", "states": {"a": {"say": "hi"}}, **fields}


def faults_of(given: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(DefinitionInvalid) as raised:
        definition.validate(given, prefix="", **kwargs)
    return [str(fault) for fault in raised.value.faults]


TWENTY_MISTAKES: dict[str, Any] = {
    "version": 2,
    "startState": "begin",
    "fallbackState": "sorry",
    "intents": {
        "order": {"examples": [], "next": "order"},
        "menu": {"examples": ["menu"], "next": "carte"},
        "lost": {"examples": ["lost"]},
        "size": {"examples": ["big"], "next": "order", "entities": {"order.size": "sizes"}},
    },
    "entities": {"number": {"values": ["1"]}},
    "states": {
        "order": {"say": "Which pizza?", "next": "pay"},
        "size": {"type": "input", "variable": "order.size", "expect": "choice", "next": "x"},
        "count": {"type": "input", "variable": "n", "expect": "colour", "next": "order"},
        "check": {
            "type": "condition",
            "branches": [{"if": {"var": "n", "greater": 1, "less": 5}, "next": "order"}],
            "else": "nowhere",
        },
        "call": {
            "type": "api",
            "request": {"method": "FETCH", "url": "ftp://example.com"},
            "next": "order",
        },
        "regex": {"type": "input", "variable": "v", "pattern": "(", "next": "order"},
        "teleport": {"type": "teleport"},
        "offload": {"type": "offload", "payload": {}, "nxt": "order"},
        "event": {"type": "event", "next": "order"},
        "listen": {"intents": {"nope": "order"}},
    },
}


@pytest.mark.parametrize(
    ("header", "fault"),
    [
        ("Content-Length", "the Content-Length header is the HTTP client's own"),
        ("transfer-encoding", "the transfer-encoding header is the HTTP client's own"),
        ("HOST", "the HOST header is the HTTP client's own"),
        ("X-A: b", "String should match pattern"),
        ("", "String should match pattern"),
    ],
)
def test_an_api_call_may_not_set_a_header_that_frames_the_request(header: str, fault: str) -> None:
    """The client writes them itself: a second Content-Length beside its own could make a
    proxy and the API read two different requests."""
    call = {"type": "api", "request": {"url": "https://x.example/", "headers": {header: "1"}}}
    faults = faults_of(v2(states={"a": {"say": "hi"}, "call": {**call, "next": "a"}}))
    assert len(faults) == 1 and fault in faults[0]
    assert "states.call.request.headers" in faults[0]
    allowed = {
        "type": "api",
        "request": {"url": "https://x.example/", "headers": {"User-Agent": "pizza/1"}},
        "next": "a",
    }
    definition.validate(v2(states={"a": {"say": "hi"}, "call": allowed}))


@pytest.mark.parametrize("name", ["a\tb", "a\nb", "\x01", "a\u2028b", "  "])
def test_a_definition_s_name_is_one_line_as_a_bot_s_is(name: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        definition.validate(v2(name=name))
    assert raised.value.field == "definition.name"
    assert definition.validate(v2(name="Pizza bot"))["name"] == "Pizza bot"


def test_a_definition_with_twenty_mistakes_gets_twenty_precise_faults() -> None:
    assert faults_of(TWENTY_MISTAKES) == [
        "intents.order.examples: List should have at least 1 item after validation, not 0",
        "states.size: an input that expects a choice needs choices or an entity",
        "states.count.expect: Input should be 'text', 'number', 'email', 'phone', 'date', "
        "'choice' or 'yesno'",
        "states.check.branches[0].if: a condition has exactly one of equals, in, greater, less, "
        "exists, matches",
        "states.call.request.method: Input should be 'GET', 'POST', 'PUT', 'PATCH' or 'DELETE'",
        "states.teleport: type is one of message, input, condition, goto, set, api, offload, "
        "event, end, action",
        "states.offload.nxt: is not a field here",
        "states.event.name: is required",
        'startState: unknown state "begin"',
        'fallbackState: unknown state "sorry"',
        "entities.number: is the name of a built-in entity",
        'intents.menu.next: unknown state "carte"',
        "intents.lost.next: is required for an intent that no state names",
        "intents.size.entities['order.size']: unknown entity \"sizes\"",
        'states.order.next: unknown state "pay"',
        'states.size.next: unknown state "x"',
        'states.check.else: unknown state "nowhere"',
        "states.call.request.url: an API URL is http:// or https://",
        "states.regex.pattern: is not a valid regex: missing ) at position 1",
        'states.listen.intents.nope: unknown intent "nope"',
    ]


def test_the_api_s_error_tells_the_first_fault_and_how_many_more() -> None:
    with pytest.raises(DefinitionInvalid) as raised:
        definition.validate(TWENTY_MISTAKES)
    assert raised.value.field == "definition.intents.order.examples"
    assert raised.value.message.endswith("(and 19 more faults)")
    assert raised.value.faults[14].view() == {
        "field": "definition.states.order.next",
        "message": 'unknown state "pay"',
    }


def test_a_version_2_definition_is_stored_as_given() -> None:
    given = v2(intents={"hi": {"examples": ["hello"], "next": "a"}})
    assert definition.validate(given) == given


def test_version_1_may_say_so_and_other_versions_are_refused() -> None:
    assert (
        definition.validate({"version": 1, "startState": "a", "states": [{"id": "a"}]})[
            "startState"
        ]
        == "a"
    )
    assert faults_of(v2(version=3)) == ["version: version is 2, or 1 (the same as leaving it out)"]


def test_every_fault_of_a_version_1_definition_is_listed() -> None:
    assert faults_of(
        {
            "startState": "x",
            "states": [{"id": "a", "next": "b", "messages": [{"text": ""}]}, {"id": "a"}],
        }
    ) == [
        "states[0].messages[0].text: String should have at least 1 character",
        "states[1].id: is used twice",
        'startState: unknown state "x"',
        'states[0].next: unknown state "b"',
    ]


@pytest.mark.parametrize(
    ("url", "variables", "fault"),
    [
        ("http://10.0.0.1/x", {}, "states.a.request.url: refused 10.0.0.1"),
        ("{{base}}/x", {"base": "http://10.0.0.1"}, "states.a.request.url: refused 10.0.0.1"),
        ("{{base}}/x", {}, None),  # from the conversation: checked at call time
        ("https://{{host}}/x", {}, None),
        ("https://api.example/x", {}, None),
        # The host known, the path from the conversation: the host is checked now.
        ("http://10.0.0.1/orders/{{order.id}}", {}, "states.a.request.url: refused 10.0.0.1"),
        ("{{base}}/{{id}}", {"base": "http://10.0.0.1"}, "states.a.request.url: refused 10.0.0.1"),
        ("https://api.example/{{id}}", {}, None),
        ("https://{{host}}.example/x", {}, None),
    ],
)
def test_api_urls_are_judged_where_they_are_known(
    url: str, variables: dict[str, Any], fault: str | None
) -> None:
    def check(address: str) -> str | None:
        return "refused 10.0.0.1" if "10.0.0.1" in address else None

    given = v2(
        variables=variables,
        states={"a": {"type": "api", "request": {"url": url}, "next": "a"}},
    )
    if fault is None:
        definition.validate(given, check_url=check)
    else:
        assert faults_of(given, check_url=check) == [fault]


def test_the_schema_in_the_repository_is_the_one_the_code_publishes() -> None:
    published = json.loads(SCHEMA_FILE.read_text())
    assert published == definition_v2.schema(), (
        "regenerate it: switchboard bot schema > docs/bot-definition.schema.json"
    )


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_example_bots_and_the_echo_template_validate_against_the_schema(path: Path) -> None:
    document = documents.load(path)
    if "conversations" in document:
        return
    jsonschema_rs.validator_for(definition_v2.schema()).validate(document)


def test_the_echo_template_validates_against_the_schema() -> None:
    jsonschema_rs.validator_for(definition_v2.schema()).validate(TEMPLATES["echo"])


@pytest.mark.parametrize("pattern", [r"(?:a{100010}){100}", r"^a{2,20000}$", r"(a{200}){60}"])
def test_a_regex_whose_counted_repeats_make_too_many_copies_is_refused(pattern: str) -> None:
    # The regex module compiles every copy: (?:a{100010}){100} took seconds and gigabytes.
    states = {
        "a": {"say": "hi", "next": "b"},
        "b": {"type": "input", "variable": "v", "expect": "text", "pattern": pattern, "next": "a"},
    }
    assert faults_of(v2(states=states)) == [
        "states.b.pattern: is not a valid regex: its counted repeats ({n}, {n,m}) make more "
        "than 10,000 copies"
    ]
    states["b"]["pattern"] = r"(?:a{100}){100}"
    definition.validate(v2(states=states))
