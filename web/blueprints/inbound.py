"""The Webhook message API (docs/wire-contract.md §1a): authenticate, validate, queue, answer
202."""

from __future__ import annotations

from functools import partial

from flask import Blueprint, Response, jsonify, request

from broker.channels import rate_limit
from broker.channels.message_form import InboundMessage, normalize
from broker.conversations import ingress
from broker.core.errors import RateLimited
from broker.core.validation import parse
from web import inbound_counts
from web.answers import Queued
from web.apidoc import documented
from web.auth import channel_of, channel_read
from web.request_body import json_object
from web.services import services

bp = Blueprint("inbound", __name__)
bp.after_request(inbound_counts.count)


@bp.post("/v1/channels/webhook/<channel_id>/messages")
@documented(
    "Send a user message to the channel's bot (docs/wire-contract.md §1a)",
    auth="channel",
    body=InboundMessage,
    answers={202: Queued},
    description="Answers once the message is durably queued. An `Idempotency-Key` header "
    "or a `messageId` seen in the last 24 h is acknowledged again and not processed twice.",
    tags=["inbound"],
)
def post_message(channel_id: str) -> tuple[Response, int]:
    s = services()
    channel, guard = channel_of(channel_id)
    inbound_counts.authenticated(channel.id)
    body = parse(InboundMessage, json_object())
    accept = partial(
        ingress.accept,
        s.redis,
        s.settings,
        s.sender,
        conversation_id=body.conversation_id,
        message=normalize(body),
        message_id=body.messageId,
        idempotency_key=request.headers.get("Idempotency-Key") or None,
    )
    try:
        rate_limit.check(s.redis, s.settings, channel)
        accepted = accept(channel=channel, guard=guard)
    except (ingress.ChannelChanged, RateLimited):
        if guard is None:
            raise
        # The channel as this process kept it may be out of date (its rate limit, its
        # version): it is read again, and the message checked and sent as for a new one.
        channel = channel_read(channel_id)
        rate_limit.check(s.redis, s.settings, channel)
        accepted = accept(channel=channel)
    inbound_counts.accepted(queued=accepted.queued)
    return jsonify(
        {
            "messageId": accepted.message_id,
            "sessionId": accepted.conversation_id,
            "status": "queued",
        }
    ), 202
