"""Liveness and readiness."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from broker import __version__
from broker.core import heartbeats
from broker.core.connection import REDIS_TROUBLE, availability, unavailable_reason
from broker.core.defaults import HEARTBEAT_TTL, UNAVAILABLE_RETRY_AFTER
from web.answers import Health, Readiness
from web.apidoc import documented
from web.errors import error_document, redis_outage
from web.services import services

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
@documented("Liveness", auth="none", answers={200: Health}, tags=["health"])
def healthz() -> Response:
    return jsonify({"status": "ok", "version": __version__})


@bp.get("/readyz")
@documented(
    "Readiness: Redis, a worker and the scheduler alive",
    auth="none",
    answers={200: Readiness, 503: Readiness},
    description="`checks` holds `redis` (`ok` or why not), how many `workers` and "
    f"`schedulers` beat in the last {HEARTBEAT_TTL} s (read from their heartbeat index, no "
    "key scan), and, when not ready, `reason` in words, also as the `error` of every 503 "
    "(code `unavailable`).",
    tags=["health"],
)
def readyz() -> tuple[Response, int]:
    """Redis must take a write (a full or read-only Redis is not ready), and it never quotes
    Redis's own error, which may name hosts or settings."""
    r = services().redis
    checks: dict[str, object] = {"redis": availability(r)}
    if checks["redis"] == "ok":
        try:
            checks["workers"] = heartbeats.alive(r, "worker")
            checks["schedulers"] = heartbeats.alive(r, "scheduler")
        except REDIS_TROUBLE as exc:
            checks["redis"] = unavailable_reason(exc) or "failing"
    redis_ok = checks["redis"] == "ok"
    if redis_ok:
        redis_outage.ended()
    missing = [
        why
        for why, bad in (
            (_redis_trouble(str(checks["redis"])), not redis_ok),
            ("no worker has a fresh heartbeat", redis_ok and not checks.get("workers")),
            ("no scheduler has a fresh heartbeat", redis_ok and not checks.get("schedulers")),
        )
        if bad
    ]
    if missing:
        checks["reason"] = "; ".join(missing)
    document: dict[str, object] = {"status": "not ready" if missing else "ready", "checks": checks}
    if missing:
        document.update(error_document("unavailable", str(checks["reason"])))
    answer = jsonify(document)
    if not redis_ok:
        answer.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    return answer, 503 if missing else 200


def _redis_trouble(reason: str) -> str:
    return "Redis does not answer" if reason == "unreachable" else f"Redis is {reason}"
