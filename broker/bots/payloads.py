"""Button payloads: a button's target state and variables, as one opaque string, signed.

`sb2.<base64 of {"g": state, "p": params}>.<base64 of an HMAC-SHA256 cut to 12 bytes>`.
The key is the conversation's (`PayloadKey.for_conversation`: the deployment's secret and
the conversation key, which names the bot, its version, the channel and the user), so a
payload only opens in the conversation it was sent to. One that does not open there (forged,
changed, another conversation's, or an `sb1.` payload of before payloads were signed) is
a button the bot version does not know: its title is read as text, its params are not set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any

from broker.core import strict_json

_PREFIX = "sb2."
#: Payloads of ours, signed or of before they were (`sb1.`, never opened any more).
_OURS = (_PREFIX, "sb1.")
_MAC_BYTES = 12


def is_ours(payload: str) -> bool:
    """Whether a payload is one of our buttons' (opened or not): never the user's words."""
    return payload.startswith(_OURS)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PayloadKey:
    """Seals a conversation's button payloads, and opens those it sealed."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def for_conversation(cls, secret: str, conversation_key: str) -> PayloadKey:
        """The key of one conversation, from the deployment's `payload_secret`."""
        derived = hmac.new(secret.encode(), b"payloads\x00" + conversation_key.encode(), "sha256")
        return cls(derived.digest())

    @classmethod
    def random(cls) -> PayloadKey:
        """A key of its own, for a run that opens only the payloads it made (a conversation
        test)."""
        return cls(secrets.token_bytes(32))

    def seal(self, goto: str | None, params: list[dict[str, Any]] | None) -> str:
        raw = json.dumps({"g": goto, "p": params or []}, separators=(",", ":")).encode()
        return f"{_PREFIX}{_b64(raw)}.{_b64(self._mac(raw))}"

    def open(self, payload: str) -> tuple[str | None, list[dict[str, Any]]] | None:
        """The target state and variables of a payload this key sealed, or None."""
        if not payload.startswith(_PREFIX):
            return None
        data, _, mac = payload[len(_PREFIX) :].partition(".")
        try:
            raw = _unb64(data)
            if not hmac.compare_digest(_unb64(mac), self._mac(raw)):
                return None
            decoded = strict_json.loads(raw)
        except (binascii.Error, ValueError):
            return None
        if not isinstance(decoded, dict):
            return None
        params = decoded.get("p")
        goto = decoded.get("g")
        return goto if isinstance(goto, str) else None, [
            p
            for p in (params if isinstance(params, list) else [])
            if isinstance(p, dict) and isinstance(p.get("key"), str) and p["key"]
        ]

    def _mac(self, raw: bytes) -> bytes:
        return hmac.new(self._key, raw, hashlib.sha256).digest()[:_MAC_BYTES]
