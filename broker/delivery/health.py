"""Endpoint health: the circuit breaker, auto-disable, operators' switches, and the
endpoint as the management API shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from broker.core import clock, keys, scripts
from broker.core.connection import Pipeline, Redis
from broker.core.defaults import CIRCUIT_PROBE_POLL
from broker.core.settings import Settings
from broker.delivery.endpoint import Endpoint
from broker.delivery.endpoint_store import load

EndpointState = Literal["healthy", "failing", "circuit_open", "disabled"]


def health(r: Redis, endpoint_id: str) -> dict[str, str]:
    return r.hgetall(keys.endpoint_health(endpoint_id))


def is_disabled(r: Redis, endpoint_id: str) -> bool:
    return r.hget(keys.endpoint_health(endpoint_id), "state") == "disabled"


def state_of(raw_health: dict[str, str], now: float) -> EndpointState:
    state = raw_health.get("state", "healthy")
    if state == "circuit_open" and now >= float(raw_health.get("circuitOpenUntil") or 0):
        # The cool-down is over; the next attempt is a probe.
        return "failing"
    return state  # type: ignore[return-value]


def view(r: Redis, endpoint: Endpoint) -> dict[str, Any]:
    """The endpoint as the management API shows it (SPEC section 6)."""
    now = clock.now()
    pipe = r.pipeline()
    pipe.hgetall(keys.endpoint_health(endpoint.id))
    pipe.lrange(keys.endpoint_recent(endpoint.id), 0, -1)
    raw, recent = pipe.execute()
    out: dict[str, Any] = {
        "id": endpoint.id,
        "kind": endpoint.kind,
        "botId": endpoint.bot_id,
        "url": endpoint.url,
        "state": state_of(raw, now),
        "successRate": round(recent.count("1") / len(recent), 4) if recent else None,
    }
    if raw.get("disabledReason"):
        out["disabledReason"] = raw["disabledReason"]
    if raw.get("lastError"):
        out["lastError"] = raw["lastError"]
    if float(raw.get("lastSuccessAt") or 0):
        out["lastSuccessAt"] = clock.iso(float(raw["lastSuccessAt"]))
    return out


@dataclass(frozen=True)
class Gate:
    """May a delivery to the endpoint be attempted now?"""

    verdict: Literal["go", "wait", "disabled"]
    #: For "wait": when to ask again.
    until: float = 0.0


def gate(r: Redis, settings: Settings, endpoint_id: str, now: float, probe_lease: float) -> Gate:
    """Go, wait (circuit open, or another worker is probing it) or disabled.

    When the circuit's cool-down is over, the first caller gets "go" and probes the
    endpoint for everyone; the others ask again every little while until its outcome
    is known, so that a good probe lets them through at once.
    """
    poll = min(settings.circuit_cooldown, CIRCUIT_PROBE_POLL)
    answer = scripts.run(
        r, "endpoint_gate", [keys.endpoint_health(endpoint_id)], [now, probe_lease, poll]
    )
    if answer[0] == "wait":
        return Gate("wait", float(answer[1]))
    return Gate(answer[0])


def add_outcome(
    pipe: Pipeline, settings: Settings, endpoint_id: str, *, ok: bool, error: str, now: float
) -> None:
    """Queue the folding of one attempt into the endpoint's health (circuit breaker and
    auto-disable) on a pipeline; its answer is the endpoint's state after it."""
    scripts.add(
        pipe,
        "endpoint_outcome",
        [keys.endpoint_health(endpoint_id), keys.endpoint_recent(endpoint_id)],
        [
            now,
            "1" if ok else "0",
            error,
            settings.circuit_threshold,
            settings.circuit_cooldown,
            settings.circuit_cooldown_max,
            settings.disable_after,
        ],
    )


def record_outcome(
    r: Redis, settings: Settings, endpoint_id: str, *, ok: bool, error: str, now: float
) -> EndpointState:
    (state,) = scripts.execute(
        r, lambda pipe: add_outcome(pipe, settings, endpoint_id, ok=ok, error=error, now=now)
    )
    return state  # type: ignore[no-any-return]


def add_disabled(pipe: Pipeline, endpoint_id: str, reason: str) -> None:
    pipe.hset(
        keys.endpoint_health(endpoint_id),
        mapping={"state": "disabled", "disabledReason": reason, "disabledAt": repr(clock.now())},
    )


def disable(r: Redis, endpoint_id: str, reason: str = "disabled by an operator") -> None:
    load(r, endpoint_id)
    scripts.execute(r, lambda pipe: add_disabled(pipe, endpoint_id, reason))


def enable(r: Redis, endpoint_id: str) -> int:
    """Re-enable an endpoint and hand the queues held for it to the scheduler; returns how many."""
    load(r, endpoint_id)
    health_key = keys.endpoint_health(endpoint_id)
    pipe = r.pipeline()
    pipe.hset(
        health_key,
        mapping={
            "state": "healthy",
            "consecutiveFailures": 0,
            "cooldown": 0,
            "circuitOpenUntil": 0,
        },
    )
    pipe.hdel(health_key, "disabledReason", "disabledAt", "failingSince", "probeUntil")
    pipe.execute()
    refs: list[str] = []
    while ref := r.spop(keys.endpoint_parked(endpoint_id)):
        refs.append(str(ref))
    if refs:
        r.zadd(keys.DUE, dict.fromkeys(refs, clock.now()))
    return len(refs)
