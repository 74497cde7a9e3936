"""The Webhook channel record and its Redis form (hash `sb:channel:<id>`).

A channel's webhook URL, signing secrets, retry schedule and timeouts live on its
endpoint (`broker.delivery.endpoint`), which has the channel's id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from broker.bots.bot import Version, as_version
from broker.core.connection import HashFields


@dataclass(frozen=True)
class Channel:
    id: str
    bot_id: str
    #: The bot version the channel talks to.
    version: Version
    #: Sent in every message to the webhook URL, and checked on the legacy inbound form.
    verify_token: str
    #: SHA-256 of the access token; the token itself is shown once, when the channel is made.
    access_token_hash: str
    created_at: float
    #: Inbound messages per second this channel may send, over the default; None: the default.
    rate_limit: float | None = None

    def to_redis(self) -> HashFields:
        return {
            "id": self.id,
            "botId": self.bot_id,
            "version": self.version,
            "verifyToken": self.verify_token,
            "accessTokenHash": self.access_token_hash,
            "createdAt": repr(self.created_at),
            "rateLimit": "" if self.rate_limit is None else repr(self.rate_limit),
        }

    @classmethod
    def from_redis(cls, raw: Mapping[str, str]) -> Channel:
        return cls(
            id=raw["id"],
            bot_id=raw["botId"],
            version=as_version(raw["version"]),
            verify_token=raw["verifyToken"],
            access_token_hash=raw["accessTokenHash"],
            created_at=float(raw["createdAt"]),
            rate_limit=float(raw["rateLimit"]) if raw.get("rateLimit") else None,
        )
