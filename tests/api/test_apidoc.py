"""The API document: every route is documented, and /openapi.json and /docs are served."""

from __future__ import annotations

import re
from typing import Any

from broker.bots.templates import TEMPLATES
from broker.core.defaults import SESSION_DATA_KEYS
from tests.web_app import WebApp
from web.apidoc import undocumented

#: Path parameters as the wire contract names them.
WIRE_NAMES = {
    "bot_id": "botId",
    "channel_id": "channelId",
    "session_id": "sessionId",
    "delivery_id": "deliveryId",
    "endpoint_id": "endpointId",
    "token_id": "tokenId",
    "dead_turn_id": "deadTurnId",
}


def test_every_route_is_documented(web: WebApp) -> None:
    assert undocumented(web.app) == []


def test_openapi_document_lists_every_route_of_the_app(web: WebApp) -> None:
    answer = web.client.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.get_json()
    assert document["openapi"] == "3.1.0"
    served = {
        (
            re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + WIRE_NAMES[m.group(1)] + "}", rule.rule),
            method.lower(),
        )
        for rule in web.app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == served


def test_inbound_route_names_its_body_auth_and_answers(web: WebApp) -> None:
    document = web.client.get("/openapi.json").get_json()
    operation = document["paths"]["/v1/channels/webhook/{channelId}/messages"]["post"]
    body_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref == "#/components/schemas/InboundMessage"
    assert operation["security"] == [{"channelAccessToken": []}]
    assert {"202", "400", "401", "404", "413", "415", "422", "429"} <= set(operation["responses"])
    assert operation["responses"]["429"]["headers"]["Retry-After"]


def test_reference_page_is_html_without_external_resources(web: WebApp) -> None:
    answer = web.client.get("/docs")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/html")
    page = answer.get_data(as_text=True)
    assert "/v1/channels/webhook/{channelId}/messages" in page
    assert "the channel&#39;s access token" in page or "the channel's access token" in page
    assert "InboundMessage" in page
    assert "<script" not in page
    # One link only: the empty inline icon, so that the browser asks for no /favicon.ico.
    assert re.findall(r"<link[^>]*>", page) == ['<link rel="icon" href="data:,">']


def _document(web: WebApp) -> dict[str, Any]:
    document: dict[str, Any] = web.client.get("/openapi.json").get_json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def _given(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": [name], "properties": {name: schema}}


def test_inbound_message_says_one_kind_and_who_sends_it(web: WebApp) -> None:
    schemas = _document(web)["components"]["schemas"]
    ref = "#/components/schemas/"
    kinds = ["textMessage", "postbackMessage", "introMessage", "locationMessage"]
    message = schemas["MessageBody"]
    # Exactly one kind that is not null (a null one counts as absent, as the model takes it).
    assert message["oneOf"] == [
        _given(kind, {"$ref": ref + kind[0].upper() + kind[1:]}) for kind in kinds
    ]
    assert message["additionalProperties"] is False
    inbound = schemas["InboundMessage"]
    assert inbound["required"] == ["message"]
    assert inbound["anyOf"] == [
        _given("conversationId", {"type": "string", "minLength": 1, "maxLength": 256}),
        _given("user", {"$ref": ref + "User"}),
    ]
    assert schemas["User"]["required"] == ["id"]
    session_data = inbound["properties"]["sessionData"]
    assert session_data["maxProperties"] == SESSION_DATA_KEYS
    assert f"{SESSION_DATA_KEYS} keys" in session_data["description"]
    postback = schemas["PostbackMessage"]
    assert [branch["required"] for branch in postback["anyOf"]] == [
        ["payload"],
        ["nextDialogstateId"],
    ]
    assert all(
        branch["properties"][name]["type"] == "string"
        for branch in postback["anyOf"]
        for name in branch["required"]
    )


def test_conversation_action_needs_messages_or_a_resume(web: WebApp) -> None:
    action = _document(web)["components"]["schemas"]["ConversationAction"]
    resume = _given("resumeBot", {"const": True})
    something, go_to = action["allOf"]
    assert something["anyOf"] == [_given("sendMessages", {"type": "array"}), resume]
    assert go_to["anyOf"] == [{"properties": {"goToDialogstate": {"type": "null"}}}, resume]
    messages = action["properties"]["sendMessages"]["anyOf"][0]
    assert messages["minItems"] == 1


def test_definitions_name_the_definition_schema(web: WebApp) -> None:
    schemas = _document(web)["components"]["schemas"]
    for model in ("CreateBot", "PutDraft"):
        definition = schemas[model]["properties"]["definition"]
        assert "GET /v1/schemas/bot-definition" in definition["description"]
        template, written = definition["oneOf"]
        assert template["properties"]["template"]["enum"] == sorted(TEMPLATES)
        assert template["additionalProperties"] is False
        assert written["required"] == ["startState", "states"]
        assert written["properties"]["template"] is False
    # The route it names is in the document.
    assert "/v1/schemas/bot-definition" in _document(web)["paths"]


def test_urls_and_times_have_their_formats(web: WebApp) -> None:
    document = _document(web)
    schemas = document["components"]["schemas"]
    urls = [
        schemas["CreateChannel"]["properties"]["webhookUrl"],
        schemas["PatchChannel"]["properties"]["webhookUrl"]["anyOf"][0],
        schemas["ConfigureOffloading"]["properties"]["apiUrl"],
    ]
    assert all(url["format"] == "uri" and url["type"] == "string" for url in urls)
    query = {
        p["name"]: p["schema"] for p in document["paths"]["/v1/dead-letters"]["get"]["parameters"]
    }
    body = schemas["DeadLetterReplay"]["properties"]
    for schema in (query["since"], query["until"], body["since"], body["until"]):
        # A time, or an empty string (no bound, as the routes take it), or null.
        assert schema["anyOf"] == [
            {"type": "string", "format": "date-time"},
            {"const": ""},
            {"type": "null"},
        ]


def test_message_routes_declare_the_idempotency_key_header(web: WebApp) -> None:
    paths = _document(web)["paths"]
    for path in ("/v1/channels/webhook/{channelId}/messages", "/api/webhookMessage/{botId}"):
        headers = [p for p in paths[path]["post"]["parameters"] if p["in"] == "header"]
        assert [(h["name"], h["required"], h["schema"]) for h in headers] == [
            ("Idempotency-Key", False, {"type": "string", "maxLength": 256})
        ]


def test_every_operation_lists_the_web_servers_own_refusals(web: WebApp) -> None:
    error = {"$ref": "#/components/schemas/ErrorAnswer"}
    for path, method, operation in _operations(_document(web)):
        answers = operation["responses"]
        expected = {"400", "405", "408", "413", "414", "431", "503"}
        if "requestBody" in operation:
            expected |= {"415", "422"}
        assert expected <= set(answers), (method, path)
        for status in expected - {"503"}:  # /readyz answers 503 with its own document
            assert answers[status]["content"]["application/json"]["schema"] == error


def test_every_429_and_503_says_retry_after(web: WebApp) -> None:
    seen = []
    for path, method, operation in _operations(_document(web)):
        for status in ("429", "503"):
            if status in operation["responses"]:
                headers = operation["responses"][status].get("headers", {})
                assert headers.get("Retry-After", {}).get("schema") == {"type": "integer"}, (
                    method,
                    path,
                    status,
                )
                seen.append((path, status))
    assert ("/readyz", "503") in seen
