"""The Webhook message API (docs/wire-contract.md §1a) as a Flask route: authenticate, validate,
queue, answer 202 (`web/message_intake.py`). `switchboard web` answers it without Flask
(`web/message_route.py`); this route serves the tests' client and any other WSGI server."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from broker.channels.message_form import InboundMessage
from web import inbound_counts, message_intake
from web.answers import Queued
from web.apidoc import IDEMPOTENCY_KEY, documented
from web.auth import client_address
from web.message_intake import MessagePost
from web.request_body import body_bytes
from web.services import services

bp = Blueprint("inbound", __name__)
bp.after_request(inbound_counts.count)


@bp.post("/v1/channels/webhook/<channel_id>/messages")
@documented(
    "Send a user message to the channel's bot (docs/wire-contract.md §1a)",
    auth="channel",
    body=InboundMessage,
    headers=[IDEMPOTENCY_KEY],
    answers={202: Queued},
    description="Answers once the message is durably queued. An `Idempotency-Key` header "
    "or a `messageId` seen in the last 24 h is acknowledged again and not processed twice.",
    tags=["inbound"],
)
def post_message(channel_id: str) -> tuple[Response, int]:
    post = MessagePost(
        route_id=channel_id,
        authorization=request.headers.get("Authorization", ""),
        content_type=request.content_type,
        idempotency_key=request.headers.get("Idempotency-Key"),
        client=client_address(),
        body=body_bytes,
    )
    accepted = message_intake.take(services(), post, inbound_counts.current())
    return jsonify(message_intake.queued(accepted)), 202
