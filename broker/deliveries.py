"""Delivery records: created by a bot turn, read by the management API, replayed by operators.

A delivery sits on the queue of its (session, endpoint) pair: `sb:{s:<hash>}:fifo:<endpoint>`.
Its id names its session (see `broker.ids.delivery_id`), so the id alone finds it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.client import Pipeline

from broker import clock, ids, keys, scripts
from broker.defaults import TRANSCRIPT_MAX
from broker.errors import NotFound
from broker.redis_conn import Redis
from broker.sender import TaskSender
from broker.settings import Settings


@dataclass(frozen=True)
class NewDelivery:
    id: str
    endpoint_id: str
    kind: str  # "message" | "messages" | "offload"
    bot_id: str
    session_id: str
    body: dict[str, Any]
    created_at: float
    #: Whether the session's next bot turn is told how the delivery ended (its answer,
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
            self.session_id,
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


def queue_ref(session: str, endpoint_id: str) -> str:
    return f"{session}|{endpoint_id}"


def split_ref(ref: str) -> tuple[str, str]:
    session, _, endpoint_id = ref.partition("|")
    return session, endpoint_id


def commit_turn(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    session: str,
    *,
    trim: int,
    trim_signals: int = 0,
    meta: dict[str, Any],
    transcript_items: list[dict[str, Any]],
    new: Sequence[NewDelivery],
) -> None:
    """Save a turn and its deliveries at once, then wake the queues that were idle.

    `trim` and `trim_signals` are how many inbox messages and signals the turn used up.
    """
    plan = {
        "meta": [str(part) for pair in meta.items() for part in pair],
        "trim": trim,
        "trimSignals": trim_signals,
        "transcript": [json.dumps(item, ensure_ascii=False) for item in transcript_items],
        "transcriptMax": TRANSCRIPT_MAX,
        "deliveries": [{"id": d.id, "fields": d.fields()} for d in new],
    }
    turn_keys = [
        keys.session_meta(session),
        keys.session_inbox(session),
        keys.session_transcript(session),
        keys.session_signals(session),
    ]
    for d in new:
        turn_keys += [keys.fifo(session, d.endpoint_id), keys.delivery(session, d.id)]
    refs = sorted({queue_ref(session, d.endpoint_id) for d in new})
    if new:
        # Written before the turn, since the indexes are not in the session's hash slot:
        # should we die between the two, the scheduler still finds the queues (a queue
        # found empty is let go), and the listings skip ids whose record never came.
        claim = clock.now() + settings.claim_lease

        def index(pipe: Pipeline) -> None:
            for d in new:
                pipe.zadd(keys.DELIVERIES, {d.id: int(d.created_at * 1000)})
                pipe.zadd(keys.endpoint_deliveries(d.endpoint_id), {d.id: int(d.created_at * 1000)})
            # nx: a queue that already waits (a retry, a claim) keeps its time.
            pipe.zadd(keys.DUE, dict.fromkeys(refs, claim), nx=True)

        scripts.execute(r, index)
    fresh = scripts.run(r, "turn_commit", turn_keys, [json.dumps(plan)])
    woken = sorted({queue_ref(session, new[i - 1].endpoint_id) for i in fresh})
    if woken:
        r.zadd(keys.DUE, dict.fromkeys(woken, clock.now() + settings.claim_lease))
        sender.deliver(woken)


def _record(r: Redis, delivery_id: str) -> tuple[str, dict[str, str]]:
    session = ids.session_of_delivery(delivery_id)
    raw: dict[str, str] = r.hgetall(keys.delivery(session, delivery_id))
    if not raw:
        raise NotFound(f"no delivery {delivery_id!r}")
    return session, raw


def view(r: Redis, delivery_id: str) -> dict[str, Any]:
    """A delivery with its attempts, as the management API shows it (SPEC section 6)."""
    session, raw = _record(r, delivery_id)
    pipe = r.pipeline()
    pipe.lrange(keys.delivery_attempts(session, delivery_id), 0, -1)
    pipe.lindex(keys.fifo(session, raw["endpointId"]), 0)
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
    sessions = [ids.session_of_delivery(d) for d in delivery_ids]
    for session, delivery_id in zip(sessions, delivery_ids, strict=True):
        pipe.hgetall(keys.delivery(session, delivery_id))
    raws = pipe.execute()
    pipe = r.pipeline()
    found = [(s, raw) for s, raw in zip(sessions, raws, strict=True) if raw]
    for session, raw in found:
        pipe.lrange(keys.delivery_attempts(session, raw["id"]), 0, -1)
        pipe.lindex(keys.fifo(session, raw["endpointId"]), 0)
        pipe.hget(keys.endpoint_health(raw["endpointId"]), "state")
    answers = pipe.execute()
    return [
        _view(raw, [json.loads(a) for a in answers[3 * i]], answers[3 * i + 1], answers[3 * i + 2])
        for i, (_, raw) in enumerate(found)
    ]


def replay(r: Redis, delivery_id: str) -> bool:
    """Send a delivered or dead-lettered delivery again; False if it is already under way."""
    session, raw = _record(r, delivery_id)
    endpoint_id = raw["endpointId"]
    ref = queue_ref(session, endpoint_id)
    # The scheduler is told first (sb:due is not in the session's hash slot): should we
    # die right after, the queue is looked at anyway; a queue that holds nothing new is
    # simply let go again.
    r.zadd(keys.DUE, {ref: clock.now()}, lt=True)
    result = scripts.run(
        r,
        "replay",
        [
            keys.delivery(session, delivery_id),
            keys.fifo(session, endpoint_id),
            keys.delivery_attempts(session, delivery_id),
        ],
        [delivery_id],
    )
    if result == -1:
        raise NotFound(f"no delivery {delivery_id!r}")
    if result == 0:
        return False
    r.zrem(keys.DEAD, delivery_id)
    return True


def replay_many(r: Redis, delivery_ids: Sequence[str]) -> int:
    """Replay several deliveries; returns how many were queued again. A delivery whose
    record expired meanwhile is passed over."""
    replayed = 0
    for delivery_id in delivery_ids:
        try:
            replayed += replay(r, delivery_id)
        except NotFound:
            continue
    return replayed
