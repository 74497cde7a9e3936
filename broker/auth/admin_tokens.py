"""Admin tokens: SWITCHBOARD_ADMIN_TOKEN, and those made by `switchboard token create`."""

from __future__ import annotations

import hmac
import json

from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.settings import Settings


def create(r: Redis, description: str = "") -> str:
    """A new admin token; only its hash is kept, so this is the one time it is shown."""
    token = ids.new_token("sbadm")
    r.hset(
        keys.ADMIN_TOKENS,
        ids.token_hash(token),
        json.dumps({"description": description, "createdAt": clock.iso(clock.now())}),
    )
    return token


def is_valid(r: Redis, settings: Settings, token: str) -> bool:
    if settings.admin_token and hmac.compare_digest(settings.admin_token, token):
        return True
    return bool(r.hexists(keys.ADMIN_TOKENS, ids.token_hash(token)))


def is_valid_hash(r: Redis, settings: Settings, token_hash: str) -> bool:
    """Whether the token whose hash this is is still an admin token (a dashboard login keeps
    only the hash, and ends when its token is revoked or changed)."""
    if settings.admin_token and hmac.compare_digest(
        ids.token_hash(settings.admin_token), token_hash
    ):
        return True
    return bool(r.hexists(keys.ADMIN_TOKENS, token_hash))
