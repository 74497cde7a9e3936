"""Endpoint health: the circuit breaker, auto-disable, operators' switches, and the
endpoint as the management API shows it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from broker.core import clock, ids, keys, logs, scripts
from broker.core.connection import HashFields, Pipeline, Redis, index_shards
from broker.core.defaults import CIRCUIT_PROBE_POLL
from broker.core.errors import NotFound
from broker.core.settings import Settings
from broker.delivery.endpoint import Endpoint
from broker.delivery.endpoint_store import announce_change, load
from broker.delivery.records import due_member

EndpointState = Literal["healthy", "failing", "circuit_open", "disabled"]
_STATES: tuple[EndpointState, ...] = ("healthy", "failing", "circuit_open", "disabled")
#: The health hash's field that says the state; the scripts read and write it too.
_STATE = "state"

#: Endpoints read per round trip by `views`.
_VIEWS_CHUNK = 500

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EndpointHealth:
    """An endpoint's health hash (`keys.endpoint_health`), kept by `endpoint_outcome.lua`
    and `endpoint_gate.lua` as attempts end, and by operators' switches."""

    state: EndpointState = "healthy"
    consecutive_failures: int = 0
    last_success_at: float = 0.0
    last_error: str = ""
    disabled_reason: str = ""
    circuit_open_until: float = 0.0

    @classmethod
    def from_redis(cls, raw: Mapping[str, str]) -> EndpointHealth:
        state = raw.get(_STATE, "healthy")
        return cls(
            state=next((s for s in _STATES if s == state), "healthy"),
            consecutive_failures=int(raw.get("consecutiveFailures") or 0),
            last_success_at=float(raw.get("lastSuccessAt") or 0),
            last_error=raw.get("lastError", ""),
            disabled_reason=raw.get("disabledReason", ""),
            circuit_open_until=float(raw.get("circuitOpenUntil") or 0),
        )

    def state_at(self, now: float) -> EndpointState:
        if self.state == "circuit_open" and now >= self.circuit_open_until:
            # The cool-down is over; the next attempt is a probe.
            return "failing"
        return self.state

    @staticmethod
    def disabled_fields(reason: str, at: float) -> HashFields:
        return {_STATE: "disabled", "disabledReason": reason, "disabledAt": repr(at)}

    @staticmethod
    def enabled_fields() -> HashFields:
        return {_STATE: "healthy", "consecutiveFailures": 0, "cooldown": 0, "circuitOpenUntil": 0}

    #: What enabling an endpoint forgets.
    CLEARED_ON_ENABLE: ClassVar[tuple[str, ...]] = (
        "disabledReason",
        "disabledAt",
        "failingSince",
        "probeUntil",
    )


def load_health(r: Redis, endpoint_id: str) -> EndpointHealth:
    return EndpointHealth.from_redis(r.hgetall(keys.endpoint_health(endpoint_id)))


def state_read(endpoint_id: str) -> tuple[str, str]:
    """The key and field of the endpoint's state (HGET)."""
    return keys.endpoint_health(endpoint_id), _STATE


def is_disabled(r: Redis, endpoint_id: str) -> bool:
    return r.hget(keys.endpoint_health(endpoint_id), _STATE) == "disabled"


def view(r: Redis, endpoint: Endpoint) -> dict[str, Any]:
    """The endpoint as the management API shows it."""
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(keys.endpoint_health(endpoint.id))
    pipe.lrange(keys.endpoint_recent(endpoint.id), 0, -1)
    raw, recent = pipe.execute()
    return _shown(endpoint, EndpointHealth.from_redis(raw), recent, clock.now())


def views(r: Redis, endpoint_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Those endpoints as `view` shows them, `_VIEWS_CHUNK` a round trip; one removed since
    its id was read is left out."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(endpoint_ids), _VIEWS_CHUNK):
        chunk = endpoint_ids[start : start + _VIEWS_CHUNK]
        pipe = r.pipeline(transaction=False)
        for endpoint_id in chunk:
            pipe.hgetall(keys.endpoint(endpoint_id))
            pipe.hgetall(keys.endpoint_health(endpoint_id))
            pipe.lrange(keys.endpoint_recent(endpoint_id), 0, -1)
        answers = pipe.execute()
        now = clock.now()
        for record, raw, recent in zip(answers[::3], answers[1::3], answers[2::3], strict=True):
            if record:
                endpoint = Endpoint.from_redis(record)
                found.append(_shown(endpoint, EndpointHealth.from_redis(raw), recent, now))
    return found


def _shown(
    endpoint: Endpoint, found: EndpointHealth, recent: list[str], now: float
) -> dict[str, Any]:
    """The endpoint as `view` shows it, given its health and its recent outcomes."""
    out: dict[str, Any] = {
        "id": endpoint.id,
        "kind": endpoint.kind,
        "botId": endpoint.bot_id,
        "url": endpoint.url,
        "state": found.state_at(now),
        "successRate": round(recent.count("1") / len(recent), 4) if recent else None,
    }
    if found.disabled_reason:
        out["disabledReason"] = found.disabled_reason
    if found.last_error:
        out["lastError"] = found.last_error
    if found.last_success_at:
        out["lastSuccessAt"] = clock.iso(found.last_success_at)
    return out


@dataclass(frozen=True)
class Gate:
    """May a delivery to the endpoint be attempted now?"""

    verdict: Literal["go", "wait", "probing", "disabled"]
    #: For "wait" and "probing": when to ask again.
    until: float = 0.0


def gate(r: Redis, settings: Settings, endpoint_id: str, now: float, probe_lease: float) -> Gate:
    """Go, wait (the circuit is open), probing (another worker is probing it) or disabled.

    When the circuit's cool-down is over, the first caller gets "go" and probes the
    endpoint for everyone; the others ask again every little while until its outcome
    is known, so that a good probe lets them through at once.
    """
    return read_gate(
        scripts.run(r, "endpoint_gate", *gate_call(settings, endpoint_id, now, probe_lease))
    )


def gate_call(
    settings: Settings, endpoint_id: str, now: float, probe_lease: float
) -> tuple[list[str], list[Any]]:
    """The keys and arguments of `endpoint_gate.lua`."""
    poll = min(settings.circuit_cooldown, CIRCUIT_PROBE_POLL)
    return [keys.endpoint_health(endpoint_id)], [now, probe_lease, poll]


def read_gate(answer: list[str]) -> Gate:
    if answer[0] == "wait":
        return Gate("wait", float(answer[1]))
    if answer[0] == "probing":
        return Gate("probing", float(answer[1]))
    return Gate("disabled" if answer[0] == "disabled" else "go")


@dataclass(frozen=True)
class OutcomeRun:
    """Attempts' outcomes in a row: one failure, or successes (only the last one's time
    matters to the health; each counts in the success rate)."""

    at: float
    ok: bool
    error: str = ""
    count: int = 1


def outcome_call(
    settings: Settings, endpoint_id: str, runs: list[OutcomeRun]
) -> tuple[list[str], list[Any]]:
    """The keys and arguments of `endpoint_outcome.lua`, which answers the state after."""
    args: list[Any] = [
        settings.circuit_threshold,
        settings.circuit_cooldown,
        settings.circuit_cooldown_max,
        settings.disable_after,
    ]
    for run in runs:
        args += [run.at, "1" if run.ok else "0", run.error, run.count]
    outcome_keys = [keys.endpoint_health(endpoint_id), keys.endpoint_recent(endpoint_id)]
    return [*outcome_keys, keys.endpoint(endpoint_id)], args


def add_outcome(
    pipe: Pipeline, settings: Settings, endpoint_id: str, *, ok: bool, error: str, now: float
) -> None:
    """Queue the folding of one attempt into the endpoint's health (circuit breaker and
    auto-disable) on a pipeline; its answer is the endpoint's state after it."""
    call = outcome_call(settings, endpoint_id, [OutcomeRun(now, ok, error)])
    scripts.add(pipe, "endpoint_outcome", *call)


def probe_soon(r: Redis, endpoint_id: str) -> None:
    """End an open circuit's cool-down now, so that its next attempt is the probe: an
    operator who replays deliveries means them to be tried, not held back."""
    health_key = keys.endpoint_health(endpoint_id)
    if r.hget(health_key, _STATE) == "circuit_open":
        r.hset(health_key, "circuitOpenUntil", 0)


def disable(r: Redis, endpoint_id: str, reason: str = "disabled by an operator") -> None:
    load(r, endpoint_id)
    r.hset(
        keys.endpoint_health(endpoint_id),
        mapping=EndpointHealth.disabled_fields(reason, clock.now()),
    )
    _forget_if_removed(r, endpoint_id)
    announce_change(r, endpoint_id)
    logs.event(log, logging.WARNING, "endpoint disabled", endpointId=endpoint_id, reason=reason)


def _forget_if_removed(r: Redis, endpoint_id: str) -> None:
    """Undo a health write that an endpoint's removal overtook: the removal takes the record
    first and the health hash after it, so a write that came between would stay for ever."""
    if not r.exists(keys.endpoint(endpoint_id)):
        r.delete(keys.endpoint_health(endpoint_id))
        raise NotFound(f"no endpoint {endpoint_id!r}")


def enable(r: Redis, endpoint_id: str) -> int:
    """Re-enable an endpoint and hand the queues held for it to the scheduler; returns how many."""
    load(r, endpoint_id)
    health_key = keys.endpoint_health(endpoint_id)
    pipe = r.pipeline(transaction=True)
    pipe.hset(health_key, mapping=EndpointHealth.enabled_fields())
    pipe.hdel(health_key, *EndpointHealth.CLEARED_ON_ENABLE)
    pipe.execute()
    _forget_if_removed(r, endpoint_id)
    announce_change(r, endpoint_id)
    parked = keys.endpoint_parked(endpoint_id)
    refs = list(r.smembers(parked))
    if refs:
        # On sb:due before they leave the parked set: a crash between leaves them in both.
        members = [due_member(ref, ids.random_hex(8)) for ref in refs]
        for shard, entries in keys.by_shard(keys.DUE, members, index_shards(r)).items():
            r.zadd(shard, dict.fromkeys(entries, clock.now()))
        r.srem(parked, *refs)
    logs.event(log, logging.INFO, "endpoint enabled", endpointId=endpoint_id, queues=len(refs))
    return len(refs)
