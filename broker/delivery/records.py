"""Delivery records: one JSON document for one endpoint, and how the API shows it.

A delivery sits on the queue of its (conversation, endpoint) pair: `sb:{c:<key>}:fifo:<endpoint>`.
Its id names its conversation (see `broker.ids.delivery_id`), so the id alone finds it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.errors import NotFound


@dataclass(frozen=True)
class NewDelivery:
    id: str
    endpoint_id: str
    kind: str  # "message" | "messages" | "offload"
    bot_id: str
    conversation_id: str
    body: dict[str, Any]
    created_at: float
    #: Whether the conversation's next bot turn is told how the delivery ended (its answer,
    #: or its death): an offload waits for one.
    notify: bool = False
    #: When it is dead if not delivered by then (0: never); an offload's answer is awaited
    #: only so long.
    expires_at: float = 0.0

    def fields(self) -> list[str]:
        extra = ["notify", "1"] if self.notify else []
        if self.expires_at:
            extra += ["expiresAt", repr(self.expires_at)]
        return [
            *extra,
            "id",
            self.id,
            "endpointId",
            self.endpoint_id,
            "kind",
            self.kind,
            "botId",
            self.bot_id,
            "sessionId",
            self.conversation_id,
            "status",
            "queued",
            "createdAt",
            repr(self.created_at),
            "attemptCount",
            "0",
            "attemptBase",
            "0",
            "body",
            json.dumps(self.body, separators=(",", ":"), ensure_ascii=False),
        ]


def queue_ref(conversation_key: str, endpoint_id: str) -> str:
    return f"{conversation_key}|{endpoint_id}"


def split_ref(ref: str) -> tuple[str, str]:
    conversation_key, _, endpoint_id = ref.partition("|")
    return conversation_key, endpoint_id


def _record(r: Redis, delivery_id: str) -> tuple[str, dict[str, str]]:
    conversation_key = ids.conversation_of_delivery(delivery_id)
    raw: dict[str, str] = r.hgetall(keys.delivery(conversation_key, delivery_id))
    if not raw:
        raise NotFound(f"no delivery {delivery_id!r}")
    return conversation_key, raw


def view(r: Redis, delivery_id: str) -> dict[str, Any]:
    """A delivery with its attempts, as the management API shows it (SPEC section 6)."""
    conversation_key, raw = _record(r, delivery_id)
    pipe = r.pipeline()
    pipe.lrange(keys.delivery_attempts(conversation_key, delivery_id), 0, -1)
    pipe.lindex(keys.fifo(conversation_key, raw["endpointId"]), 0)
    pipe.hget(keys.endpoint_health(raw["endpointId"]), "state")
    attempts, head, endpoint_state = pipe.execute()
    return _view(raw, [json.loads(a) for a in attempts], head, endpoint_state)


def _view(
    raw: dict[str, str],
    attempts: list[dict[str, Any]],
    head: str | None,
    endpoint_state: str | None,
) -> dict[str, Any]:
    status = raw["status"]
    if status == "queued" and (head != raw["id"] or endpoint_state == "disabled"):
        status = "waiting"
    out: dict[str, Any] = {
        "id": raw["id"],
        "endpointId": raw["endpointId"],
        "botId": raw["botId"],
        "sessionId": raw["sessionId"],
        "kind": raw["kind"],
        "status": status,
        "createdAt": clock.iso(float(raw["createdAt"])),
        "body": json.loads(raw["body"]),
        "attempts": attempts,
    }
    if raw.get("deliveredAt"):
        out["deliveredAt"] = clock.iso(float(raw["deliveredAt"]))
    if raw.get("nextAttemptAt") and status in ("queued", "waiting"):
        out["nextAttemptAt"] = clock.iso(float(raw["nextAttemptAt"]))
    if raw.get("deadAt"):
        out["deadAt"] = clock.iso(float(raw["deadAt"]))
    return out


def views(r: Redis, delivery_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Several deliveries in two round trips; ids whose record expired are left out."""
    pipe = r.pipeline()
    conversation_keys = [ids.conversation_of_delivery(d) for d in delivery_ids]
    for conversation_key, delivery_id in zip(conversation_keys, delivery_ids, strict=True):
        pipe.hgetall(keys.delivery(conversation_key, delivery_id))
    raws = pipe.execute()
    pipe = r.pipeline()
    found = [(s, raw) for s, raw in zip(conversation_keys, raws, strict=True) if raw]
    for conversation_key, raw in found:
        pipe.lrange(keys.delivery_attempts(conversation_key, raw["id"]), 0, -1)
        pipe.lindex(keys.fifo(conversation_key, raw["endpointId"]), 0)
        pipe.hget(keys.endpoint_health(raw["endpointId"]), "state")
    answers = pipe.execute()
    return [
        _view(raw, [json.loads(a) for a in answers[3 * i]], answers[3 * i + 1], answers[3 * i + 2])
        for i, (_, raw) in enumerate(found)
    ]
