"""Liveness and readiness."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisError

from broker import __version__
from broker.core import heartbeats
from web.answers import Health, Readiness
from web.apidoc import documented
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
    "`schedulers` beat in the last 15 s (read from their heartbeat index, no key scan), and, "
    "when not ready, `reason` in words.",
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
        log.warning("readiness: Redis does not answer: %s", exc)
        checks["redis"] = "unreachable"
    missing = [
        why
        for why, bad in (
            ("Redis does not answer", checks["redis"] != "ok"),
            ("no worker has a fresh heartbeat", checks["redis"] == "ok" and not checks["workers"]),
            (
                "no scheduler has a fresh heartbeat",
                checks["redis"] == "ok" and not checks["schedulers"],
            ),
        )
        if bad
    ]
    if missing:
        checks["reason"] = "; ".join(missing)
    return jsonify({"status": "not ready" if missing else "ready", "checks": checks}), (
        503 if missing else 200
    )
