"""The deployment's secret for button payloads (`broker.bots.payloads`), kept in Redis."""

from __future__ import annotations

from broker.bots.payloads import PayloadKey
from broker.core import ids, keys
from broker.core.connection import Redis


def read(r: Redis) -> str:
    """The secret, made now if there is none yet: the first to set it wins, and everyone reads
    that one."""
    pipe = r.pipeline(transaction=False)
    pipe.set(keys.PAYLOAD_SECRET, ids.random_hex(32), nx=True)
    pipe.get(keys.PAYLOAD_SECRET)
    secret: str = pipe.execute()[1]
    return secret


def key_for(r: Redis, conversation_key: str) -> PayloadKey:
    """The payload key of one conversation."""
    return PayloadKey.for_conversation(read(r), conversation_key)
