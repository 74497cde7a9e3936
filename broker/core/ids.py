"""Identifiers and secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from broker.core.errors import NotFound

_DELIVERY_PREFIX = "msg_"
_DEAD_TURN_PREFIX = "dturn_"


def new_id(prefix: str) -> str:
    """A sortable, unguessable id: milliseconds in hex, then 64 random bits."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


def conversation_key(bot_id: str, version: str, channel_id: str, conversation_id: str) -> str:
    """The short name of a conversation inside Redis keys; 80 bits of SHA-256. A conversation
    belongs to one channel: the same conversation id on two channels is two conversations."""
    raw = f"{bot_id}\x00{version}\x00{channel_id}\x00{conversation_id}".encode(
        "utf-8", "surrogatepass"
    )
    return hashlib.sha256(raw).hexdigest()[:20]


def delivery_id(conversation_key_: str) -> str:
    """A delivery id names its conversation, so the id alone finds the delivery's keys."""
    return f"{_DELIVERY_PREFIX}{conversation_key_}{secrets.token_hex(8)}"


def conversation_of_delivery(delivery_id_: str) -> str:
    if not delivery_id_.startswith(_DELIVERY_PREFIX) or len(delivery_id_) != 40:
        raise NotFound(f"no delivery {delivery_id_!r}")
    return delivery_id_[len(_DELIVERY_PREFIX) : len(_DELIVERY_PREFIX) + 20]


def dead_turn_id(conversation_key_: str) -> str:
    """A dead letter of turns names its conversation, as a delivery id does."""
    return f"{_DEAD_TURN_PREFIX}{conversation_key_}{secrets.token_hex(8)}"


def conversation_of_dead_turn(dead_turn_id_: str) -> str:
    if not dead_turn_id_.startswith(_DEAD_TURN_PREFIX) or len(dead_turn_id_) != 42:
        raise NotFound(f"no dead letter of turns {dead_turn_id_!r}")
    return dead_turn_id_[len(_DEAD_TURN_PREFIX) : len(_DEAD_TURN_PREFIX) + 20]


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def token_hash(token: str) -> str:
    # surrogatepass: any text hashes; a token with a lone surrogate simply matches nothing.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Compare two secrets in constant time, whatever characters they hold."""
    return hmac.compare_digest(token_hash(given), token_hash(expected))
