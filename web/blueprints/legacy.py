"""The legacy Webhook message API (docs/wire-contract.md §1b), for clients written against the
old route."""

from __future__ import annotations

from flask import Blueprint, Response, request

from broker.channels import legacy_form, rate_limit
from broker.conversations import ingress
from broker.core.validation import parse
from web import inbound_counts
from web.apidoc import Content, documented
from web.auth import throttled
from web.request_body import json_object
from web.services import services

bp = Blueprint("legacy", __name__)
bp.after_request(inbound_counts.count)

EVENT_RECEIVED = "EVENT_RECEIVED"


@bp.post("/api/webhookMessage/<bot_id>")
@documented(
    "Send a user message, legacy form (docs/wire-contract.md §1b)",
    auth="verify_token",
    body=legacy_form.LegacyMessage,
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
    s = services()
    body = parse(legacy_form.LegacyMessage, json_object())
    with throttled(f"bot:{bot_id}"):
        channel = legacy_form.find_channel(s.redis, bot_id, body.verifyToken)
    count = inbound_counts.current()
    count.channel = channel.id
    rate_limit.check(s.redis, s.settings, channel)
    accepted = ingress.accept(
        s.redis,
        s.settings,
        s.sender,
        channel=channel,
        conversation_id=body.sender.id,
        message=legacy_form.normalize(body),
        idempotency_key=request.headers.get("Idempotency-Key") or None,
    )
    count.queued = accepted.queued
    return Response(EVENT_RECEIVED, status=200, mimetype="text/plain")
