"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisError

from broker import __version__
from broker.core import heartbeats
from web.answers import Health, Readiness
from web.apidoc import documented
from web.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@documented("Liveness", auth="none", answers={200: Health}, tags=["health"])
def healthz() -> Response:
    return jsonify({"status": "ok", "version": __version__})


@bp.get("/readyz")
@documented(
    "Readiness: Redis, a worker and the scheduler alive",
    auth="none",
    answers={200: Readiness, 503: Readiness},
    tags=["health"],
)
def readyz() -> tuple[Response, int]:
    r = services().redis
    checks: dict[str, object] = {}
    try:
        r.ping()
        checks["redis"] = "ok"
        checks["workers"] = heartbeats.alive(r, "worker")
        checks["schedulers"] = heartbeats.alive(r, "scheduler")
    except (RedisError, OSError) as exc:
        checks["redis"] = f"unreachable: {exc}"
    ready = (
        checks["redis"] == "ok" and bool(checks.get("workers")) and bool(checks.get("schedulers"))
    )
    return jsonify({"status": "ready" if ready else "not ready", "checks": checks}), (
        200 if ready else 503
    )
