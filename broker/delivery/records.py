"""Delivery and attempt records: one JSON document for one endpoint, the HTTP requests made
to deliver it, their Redis forms, and how the management API shows them.

A delivery sits on the queue of its (conversation, endpoint) pair, `sb:{c:<key>}:fifo:<endpoint>`,
and its record is the hash `sb:{c:<key>}:delivery:<id>`; its attempts are a list beside it.
Its id names its conversation (see `broker.core.ids.delivery_id`), so the id alone finds it.
Scripts change records too: `attempt_record.lua` (`attemptCount`, clears `retryNow`, and
the fields given to it) and `replay.lua` (`status`, `attemptBase`, `retryNow`, and clears
the times).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from broker.core import clock, ids, keys
from broker.core.connection import HashFields, Redis
from broker.core.errors import NotFound

DeliveryKind = Literal["message", "messages", "offload"]
DeliveryStatus = Literal["queued", "delivered", "dead"]
_KINDS: tuple[DeliveryKind, ...] = ("message", "messages", "offload")
_STATUSES: tuple[DeliveryStatus, ...] = ("queued", "delivered", "dead")


@dataclass(frozen=True)
class Delivery:
    id: str
    endpoint_id: str
    kind: DeliveryKind
    bot_id: str
    conversation_id: str
    #: The document as the JSON text that is sent, and signed, byte for byte.
    body: str
    created_at: float
    status: DeliveryStatus = "queued"
    #: Attempts made in all, and how many came before the last replay: the retry schedule
    #: starts again from a replay.
    attempt_count: int = 0
    attempt_base: int = 0
    next_attempt_at: float = 0.0
    delivered_at: float = 0.0
    dead_at: float = 0.0
    #: Whether the conversation's next bot turn is told how the delivery ended (its answer,
    #: or its death): an offload waits for one.
    notify: bool = False
    #: When it is dead if not delivered by then (0: never); an offload's answer is awaited
    #: only so long.
    expires_at: float = 0.0
    #: When the user message it answers arrived at the ingress (its creation, for an agent's
    #: message or a timer's): where its end-to-end latency starts.
    received_at: float = 0.0
    #: Its next attempt is one an operator asked for (a replay): an open circuit makes it
    #: wait, not use it up unsent.
    retry_now: bool = False

    def __post_init__(self) -> None:
        if not self.received_at:
            object.__setattr__(self, "received_at", self.created_at)

    @classmethod
    def new(
        cls,
        *,
        id: str,
        endpoint_id: str,
        kind: DeliveryKind,
        bot_id: str,
        conversation_id: str,
        body: dict[str, Any],
        created_at: float,
        notify: bool = False,
        expires_at: float = 0.0,
        received_at: float = 0.0,
    ) -> Delivery:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        return cls(
            id,
            endpoint_id,
            kind,
            bot_id,
            conversation_id,
            text,
            created_at,
            notify=notify,
            expires_at=expires_at,
            received_at=received_at,
        )

    @property
    def attempts_since_replay(self) -> int:
        return self.attempt_count - self.attempt_base

    def to_redis(self) -> HashFields:
        fields: dict[str | bytes, bytes | float | int | str] = {
            "id": self.id,
            "endpointId": self.endpoint_id,
            "kind": self.kind,
            "botId": self.bot_id,
            "conversationId": self.conversation_id,
            "body": self.body,
            "createdAt": repr(self.created_at),
            "status": self.status,
            "attemptCount": self.attempt_count,
            "attemptBase": self.attempt_base,
        }
        # The times and flags most deliveries never have are left out, not written as 0.
        optional = {
            "nextAttemptAt": self.next_attempt_at,
            "deliveredAt": self.delivered_at,
            "deadAt": self.dead_at,
            "expiresAt": self.expires_at,
        }
        if self.received_at != self.created_at:
            optional["receivedAt"] = self.received_at
        fields.update({name: repr(at) for name, at in optional.items() if at})
        if self.notify:
            fields["notify"] = "1"
        return fields

    @classmethod
    def from_redis(cls, raw: Mapping[str, str]) -> Delivery:
        kind, status = raw["kind"], raw["status"]
        return cls(
            id=raw["id"],
            endpoint_id=raw["endpointId"],
            kind=next(k for k in _KINDS if k == kind),
            bot_id=raw["botId"],
            conversation_id=raw["conversationId"],
            body=raw["body"],
            created_at=float(raw["createdAt"]),
            status=next(s for s in _STATUSES if s == status),
            attempt_count=int(raw.get("attemptCount") or 0),
            attempt_base=int(raw.get("attemptBase") or 0),
            next_attempt_at=float(raw.get("nextAttemptAt") or 0),
            delivered_at=float(raw.get("deliveredAt") or 0),
            dead_at=float(raw.get("deadAt") or 0),
            notify=raw.get("notify") == "1",
            expires_at=float(raw.get("expiresAt") or 0),
            received_at=float(raw.get("receivedAt") or 0),
            retry_now=raw.get("retryNow") == "1",
        )

    def to_fields(self) -> list[str]:
        """The record as field, value, ... for a script."""
        return [str(part) for pair in self.to_redis().items() for part in pair]

    # What an attempt changes, as field, value, ... for `attempt_record.lua`.
    @staticmethod
    def delivered_fields(at: float) -> list[str]:
        return ["status", "delivered", "deliveredAt", repr(at)]

    @staticmethod
    def retry_fields(at: float) -> list[str]:
        return ["nextAttemptAt", repr(at)]

    @staticmethod
    def dead_fields(at: float) -> list[str]:
        return ["status", "dead", "deadAt", repr(at)]

    def view(
        self, attempts: Sequence[Attempt], *, waiting: bool, disabled: bool = False
    ) -> dict[str, Any]:
        """The delivery as the management API shows it; `waiting`: held behind an earlier
        delivery of its conversation, or by its endpoint being `disabled` (then no attempt
        is planned: none goes before an operator enables it)."""
        status = "waiting" if self.status == "queued" and waiting else self.status
        out: dict[str, Any] = {
            "id": self.id,
            "endpointId": self.endpoint_id,
            "botId": self.bot_id,
            "sessionId": self.conversation_id,
            "kind": self.kind,
            "status": status,
            "createdAt": clock.iso(self.created_at),
            "body": json.loads(self.body),
            "attempts": [attempt.view() for attempt in attempts],
        }
        if self.delivered_at:
            out["deliveredAt"] = clock.iso(self.delivered_at)
        if self.next_attempt_at and status in ("queued", "waiting") and not disabled:
            out["nextAttemptAt"] = clock.iso(self.next_attempt_at)
        if self.dead_at:
            out["deadAt"] = clock.iso(self.dead_at)
        return out


@dataclass(frozen=True)
class Attempt:
    """One HTTP request of a delivery, with its outcome."""

    at: float
    duration_ms: int
    #: None when no answer came (a timeout, a refused connection).
    status_code: int | None = None
    error: str | None = None
    #: The first bytes of the answer.
    response: str | None = None

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": clock.iso(self.at), "durationMs": self.duration_ms}
        if self.status_code is not None:
            out["statusCode"] = self.status_code
        if self.error:
            out["error"] = self.error
        if self.response:
            out["response"] = self.response
        return out

    def to_json(self) -> str:
        return json.dumps(self.view(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Attempt:
        raw = json.loads(text)
        return cls(
            at=clock.parse_iso(raw["at"]),
            duration_ms=int(raw["durationMs"]),
            status_code=raw.get("statusCode"),
            error=raw.get("error"),
            response=raw.get("response"),
        )


def queue_ref(conversation_key: str, endpoint_id: str) -> str:
    return f"{conversation_key}|{endpoint_id}"


def split_ref(ref: str) -> tuple[str, str]:
    conversation_key, _, endpoint_id = ref.partition("|")
    return conversation_key, endpoint_id


def due_member(ref: str, token: str) -> str:
    """A queue's entry on `sb:due`: its ref and the token of the claim the entry stands for.

    Whoever holds a queue holds it with that token and removes or moves only its own
    entry, so a worker letting go of a queue never removes the entry of the next holder.
    """
    return f"{ref}#{token}"


def split_due_member(member: str) -> tuple[str, str]:
    """The queue's ref and the claim's token ("" for an entry that names no claim)."""
    ref, _, token = member.partition("#")
    return ref, token


def load(r: Redis, delivery_id: str) -> Delivery:
    conversation_key = ids.conversation_of_delivery(delivery_id)
    raw = r.hgetall(keys.delivery(conversation_key, delivery_id))
    if not is_whole(raw):
        raise NotFound(f"no delivery {delivery_id!r}")
    return Delivery.from_redis(raw)


def is_whole(raw: Mapping[str, str]) -> bool:
    """Whether a stored record is a delivery: not missing, nor the remains an attempt of
    version 0.1 recorded after its endpoint was removed."""
    return "kind" in raw


def view(r: Redis, delivery_id: str) -> dict[str, Any]:
    """A delivery with its attempts, as the management API shows it."""
    found = views(r, [delivery_id])
    if not found:
        raise NotFound(f"no delivery {delivery_id!r}")
    return found[0]


def is_waiting(delivery_id: str, queue_head: str | None, endpoint_state: str | None) -> bool:
    """Whether a queued delivery waits: held behind an earlier one of its queue, or by its
    endpoint being disabled."""
    return queue_head != delivery_id or endpoint_state == "disabled"


def views(r: Redis, delivery_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Several deliveries in two round trips; ids whose record expired are left out."""
    pipe = r.pipeline(transaction=False)
    conversation_keys = [ids.conversation_of_delivery(d) for d in delivery_ids]
    for conversation_key, delivery_id in zip(conversation_keys, delivery_ids, strict=True):
        pipe.hgetall(keys.delivery(conversation_key, delivery_id))
    found = [
        (conversation_key, Delivery.from_redis(raw))
        for conversation_key, raw in zip(conversation_keys, pipe.execute(), strict=True)
        if is_whole(raw)
    ]
    pipe = r.pipeline(transaction=False)
    for conversation_key, delivery in found:
        pipe.lrange(keys.delivery_attempts(conversation_key, delivery.id), 0, -1)
        pipe.lindex(keys.fifo(conversation_key, delivery.endpoint_id), 0)
        pipe.hget(keys.endpoint_health(delivery.endpoint_id), "state")
    answers = pipe.execute()
    out = []
    for i, (_, delivery) in enumerate(found):
        attempts, head, endpoint_state = answers[3 * i : 3 * i + 3]
        disabled = endpoint_state == "disabled"
        waiting = is_waiting(delivery.id, head, endpoint_state)
        tried = [Attempt.from_json(a) for a in attempts]
        out.append(delivery.view(tried, waiting=waiting, disabled=disabled))
    return out
