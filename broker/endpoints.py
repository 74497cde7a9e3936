"""Endpoints: the customer URLs that deliveries go to, with their settings and health."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.client import Pipeline

from broker import clock, keys, scripts
from broker.defaults import CIRCUIT_PROBE_POLL
from broker.errors import NotFound
from broker.redis_conn import Redis
from broker.settings import Settings

EndpointKind = Literal["channel", "offloading"]
EndpointState = Literal["healthy", "failing", "circuit_open", "disabled"]


@dataclass(frozen=True)
class Endpoint:
    id: str
    kind: EndpointKind
    bot_id: str
    url: str
    secret: str
    #: The secret rotated out, and until when it still signs.
    previous_secret: str = ""
    previous_secret_until: float = 0.0
    #: Per-endpoint overrides; empty or 0 means the settings' defaults.
    retry_schedule: tuple[float, ...] = ()
    connect_timeout: float = 0.0
    total_timeout: float = 0.0
    created_at: float = field(default_factory=clock.now)
    #: Sent as `challenge.verifyToken` in the query of every request (SPEC 4); offloading
    #: endpoints have one.
    verify_token: str = ""

    def request_url(self) -> str:
        """Where requests go: the URL, with the challenge where the endpoint has a token."""
        return with_challenge(self.url, self.verify_token) if self.verify_token else self.url

    def signing_secrets(self, now: float) -> list[str]:
        if self.previous_secret and now < self.previous_secret_until:
            return [self.secret, self.previous_secret]
        return [self.secret]

    def schedule(self, settings: Settings) -> tuple[float, ...]:
        return self.retry_schedule or settings.retry_schedule

    def timeouts(self, settings: Settings) -> tuple[float, float]:
        return (
            self.connect_timeout or settings.connect_timeout,
            self.total_timeout or settings.total_timeout,
        )

    def to_redis(self) -> dict[str, str]:
        return {
            "id": self.id,
            "kind": self.kind,
            "botId": self.bot_id,
            "url": self.url,
            "secret": self.secret,
            "previousSecret": self.previous_secret,
            "previousSecretUntil": repr(self.previous_secret_until),
            "retrySchedule": json.dumps(list(self.retry_schedule)),
            "connectTimeout": repr(self.connect_timeout),
            "totalTimeout": repr(self.total_timeout),
            "createdAt": repr(self.created_at),
            "verifyToken": self.verify_token,
        }

    @classmethod
    def from_redis(cls, raw: dict[str, str]) -> Endpoint:
        return cls(
            id=raw["id"],
            kind=raw["kind"],  # type: ignore[arg-type]
            bot_id=raw["botId"],
            url=raw["url"],
            secret=raw["secret"],
            previous_secret=raw.get("previousSecret", ""),
            previous_secret_until=float(raw.get("previousSecretUntil") or 0),
            retry_schedule=tuple(json.loads(raw.get("retrySchedule") or "[]")),
            connect_timeout=float(raw.get("connectTimeout") or 0),
            total_timeout=float(raw.get("totalTimeout") or 0),
            created_at=float(raw.get("createdAt") or 0),
            verify_token=raw.get("verifyToken", ""),
        )


def with_challenge(url: str, verify_token: str) -> str:
    """`url` with `challenge.verifyToken=<token>` added to its query."""
    parts = urlsplit(url)
    query = [
        *parse_qsl(parts.query, keep_blank_values=True),
        ("challenge.verifyToken", verify_token),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def save(r: Redis, endpoint: Endpoint) -> None:
    pipe = r.pipeline()
    pipe.hset(keys.endpoint(endpoint.id), mapping=endpoint.to_redis())
    pipe.zadd(keys.ENDPOINTS, {endpoint.id: int(endpoint.created_at * 1000)}, nx=True)
    pipe.execute()


def load(r: Redis, endpoint_id: str) -> Endpoint:
    raw = r.hgetall(keys.endpoint(endpoint_id))
    if not raw:
        raise NotFound(f"no endpoint {endpoint_id!r}")
    return Endpoint.from_redis(raw)


def delete(r: Redis, endpoint_id: str) -> None:
    pipe = r.pipeline()
    pipe.delete(
        keys.endpoint(endpoint_id),
        keys.endpoint_health(endpoint_id),
        keys.endpoint_recent(endpoint_id),
    )
    pipe.zrem(keys.ENDPOINTS, endpoint_id)
    pipe.execute()


def health(r: Redis, endpoint_id: str) -> dict[str, str]:
    return r.hgetall(keys.endpoint_health(endpoint_id))  # type: ignore[no-any-return]


def is_disabled(r: Redis, endpoint_id: str) -> bool:
    return r.hget(keys.endpoint_health(endpoint_id), "state") == "disabled"  # type: ignore[no-any-return]


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


def list_ids(r: Redis, offset: int, limit: int) -> tuple[Sequence[str], int]:
    pipe = r.pipeline()
    pipe.zrange(keys.ENDPOINTS, offset, offset + limit - 1)
    pipe.zcard(keys.ENDPOINTS)
    ids, total = pipe.execute()
    return ids, total


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
        refs.append(ref)
    if refs:
        r.zadd(keys.DUE, dict.fromkeys(refs, clock.now()))
    return len(refs)
