"""Operators' API: endpoint health and switches, deliveries, dead letters and replay."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from broker import clock, deliveries, delivery_index, endpoints
from broker.errors import ValidationFailed
from broker.validation import parse
from web.auth import require_admin
from web.request_body import json_object, listing, page_args
from web.schemas import DeadLetterReplay
from web.services import services

bp = Blueprint("operations", __name__)
bp.before_request(require_admin)

_STATUSES = ("queued", "waiting", "delivered", "dead")


@bp.get("/v1/endpoints")
def list_endpoints() -> Response:
    r = services().redis
    page, limit = page_args()
    endpoint_ids, total = endpoints.list_ids(r, (page - 1) * limit, limit)
    items = [endpoints.view(r, endpoints.load(r, e)) for e in endpoint_ids]
    return jsonify(listing(items, total, page, limit))


@bp.get("/v1/endpoints/<endpoint_id>")
def get_endpoint(endpoint_id: str) -> Response:
    r = services().redis
    return jsonify(endpoints.view(r, endpoints.load(r, endpoint_id)))


@bp.post("/v1/endpoints/<endpoint_id>/enable")
def enable_endpoint(endpoint_id: str) -> Response:
    r = services().redis
    woken = endpoints.enable(r, endpoint_id)
    return jsonify({**endpoints.view(r, endpoints.load(r, endpoint_id)), "queuesResumed": woken})


@bp.post("/v1/endpoints/<endpoint_id>/disable")
def disable_endpoint(endpoint_id: str) -> Response:
    r = services().redis
    endpoints.disable(r, endpoint_id)
    return jsonify(endpoints.view(r, endpoints.load(r, endpoint_id)))


@bp.get("/v1/deliveries")
def list_deliveries() -> Response:
    page, limit = page_args()
    status = request.args.get("status") or None
    if status is not None and status not in _STATUSES:
        raise ValidationFailed(f"status is one of {', '.join(_STATUSES)}", field="status")
    items, total = delivery_index.list_page(
        services().redis,
        offset=(page - 1) * limit,
        limit=limit,
        status=status,
        endpoint_id=request.args.get("endpointId") or None,
        session_id=request.args.get("sessionId") or None,
    )
    return jsonify(listing(items, total, page, limit))


@bp.get("/v1/deliveries/<delivery_id>")
def get_delivery(delivery_id: str) -> Response:
    return jsonify(deliveries.view(services().redis, delivery_id))


@bp.post("/v1/deliveries/<delivery_id>/replay")
def replay_delivery(delivery_id: str) -> tuple[Response, int]:
    r = services().redis
    replayed = deliveries.replay(r, delivery_id)
    return jsonify({"id": delivery_id, "replayed": replayed}), 202


def _time_arg(value: str | None, name: str) -> int | None:
    if not value:
        return None
    try:
        return int(clock.parse_iso(value) * 1000)
    except ValueError as exc:
        raise ValidationFailed(f"{name} must be an ISO 8601 time", field=name) from exc


@bp.get("/v1/dead-letters")
def list_dead_letters() -> Response:
    r = services().redis
    page, limit = page_args()
    found = delivery_index.dead_letter_ids(
        r,
        endpoint_id=request.args.get("endpointId") or None,
        since_ms=_time_arg(request.args.get("since"), "since"),
        until_ms=_time_arg(request.args.get("until"), "until"),
    )
    found.reverse()
    chosen = found[(page - 1) * limit : page * limit]
    return jsonify(listing(deliveries.views(r, chosen), len(found), page, limit))


@bp.post("/v1/dead-letters/replay")
def replay_dead_letters() -> tuple[Response, int]:
    r = services().redis
    body = parse(DeadLetterReplay, json_object() if request.content_length else {})
    found = delivery_index.dead_letter_ids(
        r,
        endpoint_id=body.endpointId,
        since_ms=_time_arg(body.since, "since"),
        until_ms=_time_arg(body.until, "until"),
    )
    replayed = sum(1 for delivery_id in found if deliveries.replay(r, delivery_id))
    return jsonify({"replayed": replayed, "matched": len(found)}), 202
