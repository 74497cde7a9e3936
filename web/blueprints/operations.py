"""Operators' API: endpoint health and switches, deliveries, dead letters and replay."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from broker.core.validation import parse
from broker.delivery import delivery_index, endpoint_store, health, records, replay
from web.answers import (
    BulkReplayed,
    Delivery,
    DeliveryList,
    EnabledEndpoint,
    Endpoint,
    EndpointList,
    Replayed,
)
from web.apidoc import documented
from web.auth import require_admin
from web.queries import DeadLetterFilter, DeliveryFilter, Pagination
from web.request_body import json_object_or_nothing, query_args
from web.schemas import DeadLetterReplay
from web.services import services

bp = Blueprint("operations", __name__)
bp.before_request(require_admin)


@bp.get("/v1/endpoints")
@documented(
    "Endpoint health and state",
    auth="admin",
    query=Pagination,
    answers={200: EndpointList},
    tags=["endpoints"],
)
def list_endpoints() -> Response:
    r = services().redis
    query = query_args(Pagination)
    endpoint_ids, total = endpoint_store.list_ids(r, query.offset, query.limit)
    items = health.views(r, endpoint_ids)
    return jsonify(query.listing(items, total))


@bp.get("/v1/endpoints/<endpoint_id>")
@documented("Read an endpoint", auth="admin", answers={200: Endpoint}, tags=["endpoints"])
def get_endpoint(endpoint_id: str) -> Response:
    r = services().redis
    return jsonify(health.view(r, endpoint_store.load(r, endpoint_id)))


@bp.post("/v1/endpoints/<endpoint_id>/enable")
@documented(
    "Enable an endpoint and resume its queues",
    auth="admin",
    answers={200: EnabledEndpoint},
    tags=["endpoints"],
)
def enable_endpoint(endpoint_id: str) -> Response:
    r = services().redis
    woken = health.enable(r, endpoint_id)
    return jsonify({**health.view(r, endpoint_store.load(r, endpoint_id)), "queuesResumed": woken})


@bp.post("/v1/endpoints/<endpoint_id>/disable")
@documented("Disable an endpoint", auth="admin", answers={200: Endpoint}, tags=["endpoints"])
def disable_endpoint(endpoint_id: str) -> Response:
    r = services().redis
    health.disable(r, endpoint_id)
    return jsonify(health.view(r, endpoint_store.load(r, endpoint_id)))


@bp.get("/v1/deliveries")
@documented(
    "Deliveries, each with its attempts",
    auth="admin",
    query=DeliveryFilter,
    answers={200: DeliveryList},
    tags=["deliveries"],
)
def list_deliveries() -> Response:
    query = query_args(DeliveryFilter)
    page = delivery_index.list_page(
        services().redis,
        offset=query.offset,
        limit=query.limit,
        status=query.status,
        endpoint_id=query.endpointId,
        conversation_id=query.sessionId,
    )
    listing = query.listing(page.items, page.total)
    if page.scan_limited:
        listing["scanLimited"] = True
    return jsonify(listing)


@bp.get("/v1/deliveries/<delivery_id>")
@documented("Read a delivery", auth="admin", answers={200: Delivery}, tags=["deliveries"])
def get_delivery(delivery_id: str) -> Response:
    return jsonify(records.view(services().redis, delivery_id))


@bp.post("/v1/deliveries/<delivery_id>/replay")
@documented(
    "Send a delivery again; one waiting for its next retry is tried now",
    auth="admin",
    answers={202: Replayed},
    errors=[409],
    tags=["deliveries"],
)
def replay_delivery(delivery_id: str) -> tuple[Response, int]:
    r = services().redis
    replayed = replay.replay(r, delivery_id)
    return jsonify({"id": delivery_id, "replayed": replayed}), 202


@bp.get("/v1/dead-letters")
@documented(
    "The dead-letter list",
    auth="admin",
    query=DeadLetterFilter,
    answers={200: DeliveryList},
    tags=["deliveries"],
)
def list_dead_letters() -> Response:
    query = query_args(DeadLetterFilter)
    since_ms, until_ms = delivery_index.time_range(query.since, query.until)
    page = delivery_index.dead_letter_page(
        services().redis,
        offset=query.offset,
        limit=query.limit,
        endpoint_id=query.endpointId,
        since_ms=since_ms,
        until_ms=until_ms,
    )
    return jsonify(query.listing(page.items, page.total))


@bp.post("/v1/dead-letters/replay")
@documented(
    "Replay dead letters, by endpoint and time range",
    auth="admin",
    body=DeadLetterReplay,
    body_required=False,
    answers={202: BulkReplayed},
    errors=[404],
    tags=["deliveries"],
)
def replay_dead_letters() -> tuple[Response, int]:
    r = services().redis
    body = parse(DeadLetterReplay, json_object_or_nothing())
    since_ms, until_ms = delivery_index.time_range(body.since, body.until)
    if body.endpointId is not None:
        endpoint_store.load(r, body.endpointId)  # 404 for one that is not there
    found = delivery_index.dead_letter_ids(
        r, endpoint_id=body.endpointId, since_ms=since_ms, until_ms=until_ms
    )
    replayed = replay.replay_many(r, found)
    return jsonify({"replayed": replayed, "matched": len(found)}), 202
