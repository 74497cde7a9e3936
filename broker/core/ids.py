"""Identifiers and secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time

from broker.core.errors import NotFound

_DELIVERY_PREFIX = "msg_"
_DEAD_TURN_PREFIX = "dturn_"
#: Random bytes taken from the operating system at once, for `random_hex`.
_ENTROPY_BATCH = 4096


class _Entropy:
    """The operating system's random bytes (`os.urandom`, as `secrets` takes them), fetched
    a few kilobytes at a time: a worker makes ids and claim tokens for every message, and a
    system call for each cost a twentieth of its CPU. A forked child starts afresh, so it
    never repeats its parent's bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._bytes = b""
        self._at = 0

    def hex(self, nbytes: int) -> str:
        with self._lock:
            if self._at + nbytes > len(self._bytes):
                self._bytes, self._at = os.urandom(max(_ENTROPY_BATCH, nbytes)), 0
            start, self._at = self._at, self._at + nbytes
            return self._bytes[start : self._at].hex()


_entropy = _Entropy()


def random_hex(nbytes: int) -> str:
    """`nbytes` random bytes in hex: unguessable, as `secrets.token_hex`'s."""
    return _entropy.hex(nbytes)


class _Clock:
    """Milliseconds and a count of the ids made in the same millisecond by this process, so
    that ids made one after another sort in that order, not by their random bits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._count = 0

    def tick(self) -> tuple[int, int]:
        ms = int(time.time() * 1000)
        with self._lock:
            if ms == self._ms:
                self._count = min(self._count + 1, 0xFFFF)
            else:
                self._ms, self._count = ms, 0
            return ms, self._count


_clock = _Clock()


def new_id(prefix: str) -> str:
    """A sortable, unguessable id: milliseconds in hex, the count within that millisecond,
    then 48 random bits."""
    ms, count = _clock.tick()
    return f"{prefix}_{ms:012x}{count:04x}{random_hex(6)}"


def conversation_key(bot_id: str, version: str, channel_id: str, conversation_id: str) -> str:
    """The short name of a conversation inside Redis keys; 80 bits of SHA-256. A conversation
    belongs to one channel: the same conversation id on two channels is two conversations."""
    raw = f"{bot_id}\x00{version}\x00{channel_id}\x00{conversation_id}".encode(
        "utf-8", "surrogatepass"
    )
    return hashlib.sha256(raw).hexdigest()[:20]


def delivery_id(conversation_key_: str, epoch: str, number: int, cause: str = "") -> str:
    """The `number`th delivery a conversation made since `epoch` (`delivery_epoch`), made
    as it took `cause` (the inbox message or signal it answers, as stored). It names its
    conversation, so the id alone finds the delivery's keys. It is the same whenever a turn
    takes the same message from the same state: a turn run again because Redis lost its
    commit (a master that failed over) sends its replies under the ids they had, which
    receivers know (`webhook-id`); and a reply to another message (the first one was lost
    with that master) has another id, however the counts were rolled back."""
    raw = f"{epoch}:{number}:{cause}".encode("utf-8", "surrogatepass")
    return f"{_DELIVERY_PREFIX}{conversation_key_}{hashlib.blake2b(raw, digest_size=8).hexdigest()}"


def delivery_epoch(first_message: str | None) -> str:
    """What a new conversation's delivery ids are made from: the first inbox message its first
    turn takes (as stored: its id and when it came make it unique), or, for a turn with no
    message, chance."""
    if first_message is None:
        return random_hex(8)
    raw = first_message.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def conversation_of_delivery(delivery_id_: str) -> str:
    if not delivery_id_.startswith(_DELIVERY_PREFIX) or len(delivery_id_) != 40:
        raise NotFound(f"no delivery {delivery_id_!r}")
    return delivery_id_[len(_DELIVERY_PREFIX) : len(_DELIVERY_PREFIX) + 20]


def dead_turn_id(conversation_key_: str) -> str:
    """A dead letter of turns names its conversation, as a delivery id does."""
    return f"{_DEAD_TURN_PREFIX}{conversation_key_}{random_hex(8)}"


def is_dead_turn_of(dead_turn_id_: str, conversation_key_: str) -> bool:
    return dead_turn_id_.startswith(_DEAD_TURN_PREFIX + conversation_key_)


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
