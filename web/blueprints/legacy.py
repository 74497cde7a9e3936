"""The legacy Webhook message API (docs/wire-contract.md §1b), for clients written against the
old route."""

from __future__ import annotations

from flask import Blueprint, Response, request

from broker.channels import legacy_form
from web import inbound_counts, message_intake
from web.apidoc import IDEMPOTENCY_KEY, Content, documented
from web.auth import client_address
from web.message_intake import EVENT_RECEIVED, MessagePost
from web.request_body import body_bytes
from web.services import services

bp = Blueprint("legacy", __name__)
bp.after_request(inbound_counts.count)


@bp.post("/api/webhookMessage/<bot_id>")
@documented(
    "Send a user message, legacy form (docs/wire-contract.md §1b)",
    auth="verify_token",
    body=legacy_form.LegacyMessage,
    headers=[IDEMPOTENCY_KEY],
    answers={200: Content("text/plain", "The message is queued.", example=EVENT_RECEIVED)},
    errors=[401, 429],
    description="No access token: the verify token in the body names which of the bot's "
    "Webhook channels the message comes from, and the bot answers on that channel's webhook. "
    "`sender.id` names the session; `locale` becomes the session variable `locale`. A button "
    "press arrives as `text` holding a JSON string with `params`, `nextDialogstateId`, "
    "`type` and `caption`, and is taken as a postback.",
    tags=["inbound"],
)
def post_legacy_message(bot_id: str) -> Response:
    post = MessagePost(
        route_id=bot_id,
        authorization="",
        content_type=request.content_type,
        idempotency_key=request.headers.get("Idempotency-Key"),
        client=client_address(),
        body=body_bytes,
    )
    message_intake.take_legacy(services(), post, inbound_counts.current())
    return Response(EVENT_RECEIVED, status=200, mimetype="text/plain")
