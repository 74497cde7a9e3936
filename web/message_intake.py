"""Taking in a user message of the Webhook message API: authenticate, validate, queue, for the
current route (docs/wire-contract.md §1a, `take`) and the legacy one (§1b, `take_legacy`).
The same steps whatever serves the request: the Flask routes (`web/blueprints/inbound.py`,
`web/blueprints/legacy.py`) or the web server's own answer on its event loop
(`web/message_route.py`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from broker.channels import legacy_form, rate_limit
from broker.channels.message_form import InboundMessage, normalize
from broker.conversations import ingress
from broker.core.errors import RateLimited
from broker.core.validation import parse
from web.auth import bearer_of, channel_of, channel_read, throttled_for
from web.errors import redis_outage
from web.inbound_counts import InboundCount
from web.request_body import json_object_of
from web.services import Services

#: What the legacy route answers a message it took.
EVENT_RECEIVED = "EVENT_RECEIVED"


@dataclass(frozen=True)
class MessagePost:
    """A request to a message route, as much of it as taking the message needs."""

    #: The id in the route's path: a channel's (§1a), a bot's (§1b).
    route_id: str
    #: The `Authorization` header's value ('' when there is none).
    authorization: str
    content_type: str | None
    idempotency_key: str | None
    #: The client's address, for the throttling of failed authentications.
    client: str
    #: Reads the body: once the request is authenticated, so that a refusal need not.
    body: Callable[[], bytes]


def take(s: Services, post: MessagePost, count: InboundCount) -> ingress.Accepted:
    """Authenticate, validate and queue the message; each refusal is a SwitchboardError."""
    token = bearer_of(post.authorization)
    channel, guard = channel_of(s, post.route_id, token, post.client)
    count.channel = channel.id
    body = parse(InboundMessage, json_object_of(post.body(), post.content_type))
    accept = partial(
        ingress.accept,
        s.redis,
        s.settings,
        s.sender,
        conversation_id=body.conversation_id,
        message=normalize(body),
        message_id=body.messageId,
        idempotency_key=post.idempotency_key or None,
    )
    try:
        rate_limit.check(s.redis, s.settings, channel)
        accepted = accept(channel=channel, guard=guard)
    except (ingress.ChannelChanged, RateLimited):
        if guard is None:
            raise
        # The channel as this process kept it may be out of date (its rate limit, its
        # version): it is read again, and the message checked and sent as for a new one.
        channel = channel_read(s, post.route_id, token, post.client)
        rate_limit.check(s.redis, s.settings, channel)
        accepted = accept(channel=channel)
    count.queued = accepted.queued
    redis_outage.ended()
    return accepted


def take_legacy(s: Services, post: MessagePost, count: InboundCount) -> ingress.Accepted:
    """The same for the legacy route: the channel is the bot's whose verify token the body
    holds."""
    body = parse(legacy_form.LegacyMessage, json_object_of(post.body(), post.content_type))
    with throttled_for(s, post.client, f"bot:{post.route_id}"):
        channel = legacy_form.find_channel(s.redis, post.route_id, body.verifyToken)
    count.channel = channel.id
    rate_limit.check(s.redis, s.settings, channel)
    accepted = ingress.accept(
        s.redis,
        s.settings,
        s.sender,
        channel=channel,
        conversation_id=body.sender.id,
        message=legacy_form.normalize(s.redis, channel, body),
        idempotency_key=post.idempotency_key or None,
    )
    count.queued = accepted.queued
    redis_outage.ended()
    return accepted


def queued(accepted: ingress.Accepted) -> dict[str, Any]:
    """The 202 answer's document."""
    return {
        "messageId": accepted.message_id,
        "sessionId": accepted.conversation_id,
        "status": "queued",
    }
