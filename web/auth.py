"""Bearer-token checks: the admin token everywhere, a bot's API token on its agent route, a
channel's access token and a bot's verify tokens on the inbound routes. Every check is
throttled: failures count per client address and per target (`broker.auth.throttle`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import request

from broker.auth import admin_tokens, api_tokens, throttle
from broker.channels import channel_store
from broker.channels.channel import Channel
from broker.conversations.ingress import Guard
from broker.core import generation
from broker.core.connection import Pipeline, on_cluster
from broker.core.errors import Forbidden, Unauthorized
from web.client_address import client_of
from web.services import Services, services

#: What a bearer token may hold (RFC 6750's b64token); anything else matches no token.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer_token() -> str | None:
    """The request's bearer token (`bearer_of`)."""
    return bearer_of(request.headers.get("Authorization", ""))


def bearer_of(authorization: str) -> str | None:
    """The bearer token of an `Authorization` header's value; None when there is none. One
    that no token could be (other characters) is kept as it is, to be refused as not valid."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@contextmanager
def throttled(target: str, read: Callable[[Pipeline], object] | None = None) -> Iterator[list[Any]]:
    """`throttled_for` this request's client."""
    with throttled_for(services(), client_address(), target, read) as answers:
        yield answers


@contextmanager
def throttled_for(
    s: Services, client: str, target: str, read: Callable[[Pipeline], object] | None = None
) -> Iterator[list[Any]]:
    """Check credentials against `target` inside: 429 while `client` or `target` has failed
    too often lately; an Unauthorized raised inside counts as one more failure. What `read`
    queues is read in the same round trip, and given inside."""
    answers = throttle.check(s.redis, s.settings, client, target, read)
    try:
        yield answers
    except Unauthorized:
        throttle.failed(s.redis, s.settings, client, target)
        raise


def client_address() -> str:
    """The address of the client of the request Flask is answering."""
    return client_of(
        request.remote_addr or "unknown",
        request.headers.get("X-Forwarded-For"),
        services().settings.trusted_proxies,
    )


def channel_of(
    s: Services, channel_id: str, token: str | None, client: str
) -> tuple[Channel, Guard | None]:
    """The channel whose access token is `token`: from the channels this process knows,
    with the guard the ingress script then checks (one round trip to Redis for the whole
    request), or else read (`channel_read`)."""
    known = None if on_cluster(s.redis) else s.channels.get(channel_id, token)
    if known is None:
        return channel_read(s, channel_id, token, client), None
    counters = throttle.counters(s.settings, client, f"channel:{channel_id}")
    return known.channel, Guard(known.generation, counters)


def channel_read(s: Services, channel_id: str, token: str | None, client: str) -> Channel:
    """The channel whose access token is `token`, read from Redis, throttled, and kept for
    the next messages in place of what was kept."""
    s.channels.forget(channel_id)

    def read(pipe: Pipeline) -> None:
        channel_store.read(pipe, channel_id)
        generation.read(pipe)

    with throttled_for(s, client, f"channel:{channel_id}", read) as (raw, current):
        channel = channel_store.authenticate(raw, channel_id, token)
    if not on_cluster(s.redis):
        s.channels.keep(channel, current)
    return channel


def _is_admin(token: str) -> bool:
    s = services()
    return _TOKEN.fullmatch(token) is not None and admin_tokens.is_valid(s.redis, s.settings, token)


def _bot_of(token: str) -> str | None:
    return api_tokens.bot_of(services().redis, token) if _TOKEN.fullmatch(token) else None


def require_admin() -> None:
    with throttled("admin"):
        token = bearer_token()
        if token is None:
            raise Unauthorized("send an admin token as 'Authorization: Bearer <token>'")
        if _is_admin(token):
            return
        if _bot_of(token) is not None:
            raise Forbidden("an API token only opens its bot's conversation actions")
        raise Unauthorized("that admin token is not valid")


def require_admin_or_bot_token(bot_id: str) -> None:
    """The admin token, or an API token of `bot_id`."""
    with throttled(f"bot:{bot_id}"):
        token = bearer_token()
        if token is None:
            raise Unauthorized("send an admin or API token as 'Authorization: Bearer <token>'")
        if _is_admin(token):
            return
        owner = _bot_of(token)
        if owner is None:
            raise Unauthorized("that token is not valid")
        if owner != bot_id:
            raise Forbidden("that API token belongs to another bot")
