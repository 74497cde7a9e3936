"""The API document: every route is documented, and /openapi.json and /docs are served."""

from __future__ import annotations

import re

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
