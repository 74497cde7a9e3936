"""Admin tokens: SWITCHBOARD_ADMIN_TOKEN, and those made by `switchboard token create`, which
can be listed and revoked by their id (never the token: only its SHA-256 is kept)."""

from __future__ import annotations

import hmac
import json
from typing import TypedDict

from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.errors import NotFound
from broker.core.settings import Settings

_ID_PREFIX = "adm_"


class AdminTokenRecord(TypedDict):
    """What is kept of an admin token, as JSON under its hash (and shown by the API)."""

    id: str
    description: str
    createdAt: str


def _id_of(digest: str) -> str:
    """A token's id: the start of its hash, so tokens made before ids were kept have one too."""
    return f"{_ID_PREFIX}{digest[:16]}"


def create(r: Redis, description: str = "") -> str:
    """A new admin token; only its hash is kept, so this is the one time it is shown."""
    token = ids.new_token("sbadm")
    digest = ids.token_hash(token)
    record = AdminTokenRecord(
        id=_id_of(digest), description=description, createdAt=clock.iso(clock.now())
    )
    r.hset(keys.ADMIN_TOKENS, digest, json.dumps(record))
    return token


def is_valid(r: Redis, settings: Settings, token: str) -> bool:
    if settings.admin_token and ids.same_secret(token, settings.admin_token):
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


def list_all(r: Redis) -> list[AdminTokenRecord]:
    """The tokens made with `switchboard token create`, oldest first."""
    found: list[AdminTokenRecord] = []
    for digest, raw in r.hgetall(keys.ADMIN_TOKENS).items():
        kept = json.loads(raw)
        found.append(
            AdminTokenRecord(
                id=_id_of(digest),
                description=str(kept.get("description", "")),
                createdAt=str(kept.get("createdAt", "")),
            )
        )
    return sorted(found, key=lambda record: (record["createdAt"], record["id"]))


def revoke(r: Redis, token_id: str) -> None:
    """The token stops working at once; NotFound when no token has that id."""
    digests = [d for d in r.hkeys(keys.ADMIN_TOKENS) if _id_of(d) == token_id]
    if not token_id.startswith(_ID_PREFIX) or not digests:
        raise NotFound(f"no admin token {token_id!r}")
    r.hdel(keys.ADMIN_TOKENS, *digests)
