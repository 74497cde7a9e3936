"""The channel store: Webhook channels (how a customer's integration talks to a bot, both
ways) in Redis, with the endpoint that carries each one's webhook URL."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from broker.bots import bot_store
from broker.bots.bot import Version
from broker.channels import rate_limit
from broker.channels.channel import Channel
from broker.core import clock, generation, ids, keys, record_change
from broker.core.connection import Pipeline, Redis
from broker.core.defaults import VERIFY_TOKENS_LOCK_LEASE, VERIFY_TOKENS_LOCK_WAIT
from broker.core.errors import Conflict, NotFound, Unauthorized
from broker.core.locks import Lock
from broker.core.settings import Settings
from broker.delivery import endpoint_store
from broker.delivery.endpoint import OVERRIDES, Endpoint
from broker.delivery.netsafety import check_url


def create(
    r: Redis,
    settings: Settings,
    bot_id: str,
    webhook_url: str,
    *,
    verify_token: str | None = None,
    version: Version = "LIVE",
) -> dict[str, Any]:
    """Add a Webhook channel. The answer is the only place the access token is shown."""
    if not bot_store.exists(r, bot_id):
        raise NotFound(f"no bot {bot_id!r}")
    check_url(webhook_url, settings.outbound_allowlist, field="webhookUrl")
    channel_id = ids.new_id("ch")
    access_token = ids.new_token("sbat")
    given_token = verify_token or None
    verify_token = verify_token or secrets.token_urlsafe(12)
    now = clock.now()
    endpoint = Endpoint(
        id=channel_id,
        kind="channel",
        bot_id=bot_id,
        url=webhook_url,
        secret=ids.new_signing_secret(),
        created_at=now,
    )
    channel = Channel(
        id=channel_id,
        bot_id=bot_id,
        version=version,
        verify_token=verify_token,
        access_token_hash=ids.token_hash(access_token),
        created_at=now,
    )
    # A token given may be another channel's; one made here is new.
    with _verify_token_free(r, bot_id, given_token):
        pipe = r.pipeline(transaction=False)
        pipe.hset(keys.channel(channel_id), mapping=channel.to_redis())
        pipe.sadd(keys.bot_channels(bot_id), channel_id)
        generation.move_on(pipe)
        pipe.execute()
    endpoint_store.save(r, endpoint)
    return {**view(r, settings, channel_id), "accessToken": access_token}


def get(r: Redis, channel_id: str) -> Channel:
    raw = r.hgetall(keys.channel(channel_id))
    if not raw:
        raise NotFound(f"no channel {channel_id!r}")
    return Channel.from_redis(raw)


def of_bot(r: Redis, bot_id: str) -> list[Channel]:
    """The bot's channels, oldest first."""
    pipe = r.pipeline(transaction=False)
    for channel_id in sorted(r.smembers(keys.bot_channels(bot_id))):
        pipe.hgetall(keys.channel(channel_id))
    return [Channel.from_redis(raw) for raw in pipe.execute() if raw]


def _check_verify_token_free(
    r: Redis, bot_id: str, verify_token: str, channel_id: str | None = None
) -> None:
    """Conflict when another channel of the bot has this verify token: on the legacy route
    (§1b) the token is all that tells the bot's channels apart."""
    for other in of_bot(r, bot_id):
        if other.id != channel_id and ids.same_secret(verify_token, other.verify_token):
            raise Conflict(
                f"channel {other.id} of this bot has this verify token: the legacy route "
                "tells a bot's channels apart by it",
                field="verifyToken",
            )


def view(
    r: Redis, settings: Settings, channel_id: str, endpoint: Endpoint | None = None
) -> dict[str, Any]:
    """The channel as the management API shows it, with its endpoint's settings (`endpoint`
    where the caller has just written it)."""
    channel = get(r, channel_id)
    if endpoint is None:
        endpoint = endpoint_store.load(r, channel_id)
    return {
        "id": channel_id,
        "botId": channel.bot_id,
        "webhookUrl": endpoint.url,
        "verifyToken": channel.verify_token,
        "signingSecret": endpoint.secret,
        "version": channel.version,
        "messagesUrl": f"{settings.public_url}/v1/channels/webhook/{channel_id}/messages",
        **endpoint.overrides_view(settings),
        "rateLimit": _as_given(rate_limit.limits(settings, channel)[0]),
        "createdAt": clock.iso(channel.created_at),
    }


def _as_given(number: float) -> float:
    """A whole number as an integer (`2`, not `2.0`), as it was most likely given."""
    return int(number) if float(number).is_integer() else number


def read(pipe: Pipeline, channel_id: str) -> None:
    """Queue the read of a channel's record, for `authenticate`."""
    pipe.hgetall(keys.channel(channel_id))


def authenticate(raw: dict[str, str], channel_id: str, token: str | None) -> Channel:
    """The channel whose record `read` gave, if `token` (the request's bearer token) is its
    access token."""
    if token is None:
        raise Unauthorized("send the channel's access token as 'Authorization: Bearer <token>'")
    if not raw:
        raise NotFound(f"no channel {channel_id!r}")
    channel = Channel.from_redis(raw)
    if not hmac.compare_digest(channel.access_token_hash, ids.token_hash(token)):
        raise Unauthorized("the access token is not this channel's")
    return channel


def update(
    r: Redis, settings: Settings, channel_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change a channel's URL, verify token, version, rate limit, retry schedule or
    timeouts."""
    channel = get(r, channel_id)
    channel_changes: dict[str, Any] = {}
    if changes.get("verifyToken") is not None:
        channel_changes["verify_token"] = changes["verifyToken"]
    if changes.get("version") is not None:
        channel_changes["version"] = changes["version"]
    if changes.get("rateLimit") is not None:
        channel_changes["rate_limit"] = float(changes["rateLimit"])
    endpoint_changes: dict[str, Any] = {}
    if changes.get("webhookUrl") is not None:
        endpoint_changes["url"] = check_url(
            changes["webhookUrl"], settings.outbound_allowlist, field="webhookUrl"
        )
    overrides = {name: changes[name] for name in OVERRIDES if changes.get(name) is not None}

    def changed_endpoint(read: Endpoint) -> Endpoint:
        return replace(read, **endpoint_changes).with_overrides(settings, overrides)

    # Checked first, so that nothing is written of a change that is refused.
    changed_endpoint(endpoint_store.load(r, channel_id))
    if channel_changes:
        with _verify_token_free(r, channel.bot_id, changes.get("verifyToken"), channel_id):
            written = record_change.change(
                r,
                keys.channel(channel_id),
                lambda read: replace(Channel.from_redis(read), **channel_changes).to_redis(),
            )
        if written is None:
            raise NotFound(f"no channel {channel_id!r}")
        generation.move_on(r)
    if endpoint_changes or overrides:
        endpoint_store.change(r, channel_id, changed_endpoint)
    return view(r, settings, channel_id)


@contextmanager
def _verify_token_free(
    r: Redis, bot_id: str, verify_token: str | None, channel_id: str | None = None
) -> Iterator[None]:
    """Conflict when another channel of the bot has `verify_token` (when one is given);
    else hold the bot's verify tokens while the caller writes it: two calls at once would
    each find the same token free."""
    if verify_token is None:
        yield
        return
    lock = Lock(r, keys.bot_verify_tokens_lock(bot_id), VERIFY_TOKENS_LOCK_LEASE)
    if not lock.acquire_within(VERIFY_TOKENS_LOCK_WAIT):
        raise Conflict("another change to this bot's channels is under way: try again")
    try:
        _check_verify_token_free(r, bot_id, verify_token, channel_id)
        yield
    finally:
        lock.release()


def rotate_secret(r: Redis, settings: Settings, channel_id: str) -> dict[str, Any]:
    """A new signing secret; the old one keeps signing beside it for
    SECRET_ROTATION_OVERLAP."""
    get(r, channel_id)
    # What this rotation wrote: read again, it could be another's made meanwhile.
    return view(r, settings, channel_id, endpoint_store.rotate_secret(r, channel_id))


def delete(r: Redis, bot_id: str, channel_id: str) -> None:
    """Remove the bot's channel (its access token stops working first), then its endpoint
    with its deliveries; done again, it finishes a removal that was cut short. Its
    conversations go with `bot_removal.remove_channel`."""
    r.delete(keys.channel(channel_id), keys.rate_limit(channel_id))
    generation.move_on(r)
    endpoint_store.delete(r, channel_id)
    r.srem(keys.bot_channels(bot_id), channel_id)


def list_page(
    r: Redis, settings: Settings, bot_id: str, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the bot's channels, oldest first (channel ids sort by creation time)."""
    channel_ids = sorted(r.smembers(keys.bot_channels(bot_id)))
    chosen = channel_ids[offset : offset + limit]
    return [view(r, settings, channel_id) for channel_id in chosen], len(channel_ids)
