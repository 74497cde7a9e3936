"""Bot-scoped API tokens: what an agent server sends to the conversation-actions route.

Only a token's SHA-256 is kept; the token itself is shown once, when it is made.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from broker.bots import bot_store
from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.errors import NotFound


class ApiTokenRecord(TypedDict):
    """What is kept of a token, as JSON under its hash (and shown by the API)."""

    id: str
    botId: str
    description: str
    createdAt: str


def create(r: Redis, bot_id: str, description: str = "") -> dict[str, Any]:
    """A new API token of one bot; the answer is the only place the token is shown."""
    if not bot_store.exists(r, bot_id):
        raise NotFound(f"no bot {bot_id!r}")
    token = ids.new_token("sbapi")
    token_id = ids.new_id("tok")
    record = ApiTokenRecord(
        id=token_id, botId=bot_id, description=description, createdAt=clock.iso(clock.now())
    )
    digest = ids.token_hash(token)
    # The bot's list first: should we die between the two, it names a token that never
    # opens anything, and revoking it still works.
    pipe = r.pipeline(transaction=False)
    pipe.hset(keys.bot_api_tokens(bot_id), token_id, digest)
    pipe.hset(keys.API_TOKENS, digest, json.dumps(record))
    pipe.execute()
    return {**record, "token": token}


def bot_of(r: Redis, token: str) -> str | None:
    """The bot a token belongs to, or None when it is no API token."""
    raw = r.hget(keys.API_TOKENS, ids.token_hash(token))
    return _record(raw)["botId"] if raw else None


def _record(text: str) -> ApiTokenRecord:
    found: ApiTokenRecord = json.loads(text)
    return found


def list_for_bot(r: Redis, bot_id: str) -> list[ApiTokenRecord]:
    """The bot's tokens (without the tokens themselves), oldest first."""
    digests = r.hvals(keys.bot_api_tokens(bot_id))
    if not digests:
        return []
    records = r.hmget(keys.API_TOKENS, digests)
    return sorted((_record(raw) for raw in records if raw), key=lambda t: t["id"])


def revoke(r: Redis, bot_id: str, token_id: str) -> None:
    digest = r.hget(keys.bot_api_tokens(bot_id), token_id)
    if digest is None:
        raise NotFound(f"bot {bot_id!r} has no API token {token_id!r}")
    # The token stops working first; its entry in the bot's list goes after.
    pipe = r.pipeline(transaction=False)
    pipe.hdel(keys.API_TOKENS, digest)
    pipe.hdel(keys.bot_api_tokens(bot_id), token_id)
    pipe.execute()


def revoke_all(r: Redis, bot_id: str) -> None:
    digests = r.hvals(keys.bot_api_tokens(bot_id))
    pipe = r.pipeline(transaction=False)
    if digests:
        pipe.hdel(keys.API_TOKENS, *digests)
    pipe.delete(keys.bot_api_tokens(bot_id))
    pipe.execute()
