"""A bot's offloading (human handover) integration (docs/wire-contract.md §4 and §6)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from broker.conversations import conversation_store
from broker.core.validation import parse
from broker.delivery import offloading
from broker.delivery.endpoint import OVERRIDES
from web.apidoc import documented
from web.auth import require_admin
from web.request_body import json_object
from web.schemas import ConfigureOffloading, Offloading
from web.services import services

bp = Blueprint("offloading", __name__)
bp.before_request(require_admin)


@bp.put("/v1/bots/<bot_id>/offloading")
@documented(
    "Configure handover; the health check runs first (422 with the endpoint's answer)",
    auth="admin",
    body=ConfigureOffloading,
    answers={200: Offloading},
    description=(
        "Sends `GET <apiUrl>?challenge.verifyToken=<verifyToken>` and expects `200` with "
        '`{"status": "ok"}`. The API URL becomes an endpoint of kind `offloading`, with '
        "its own retry schedule and timeouts when given (as a channel's; those left out are "
        "the defaults)."
    ),
    tags=["offloading"],
)
def configure(bot_id: str) -> Response:
    body = parse(ConfigureOffloading, json_object())
    s = services()
    overrides = body.model_dump(include=set(OVERRIDES), exclude_none=True)
    return jsonify(
        offloading.configure(s.redis, s.settings, bot_id, body.apiUrl, body.verifyToken, overrides)
    )


@bp.get("/v1/bots/<bot_id>/offloading")
@documented(
    "Read the offloading integration", auth="admin", answers={200: Offloading}, tags=["offloading"]
)
def get_offloading(bot_id: str) -> Response:
    s = services()
    return jsonify(offloading.view(s.redis, s.settings, bot_id))


@bp.post("/v1/bots/<bot_id>/offloading/rotate-secret")
@documented(
    "New signing secret; the old one still signs for 24 h",
    auth="admin",
    answers={200: Offloading},
    tags=["offloading"],
)
def rotate_offloading_secret(bot_id: str) -> Response:
    s = services()
    return jsonify(offloading.rotate_secret(s.redis, s.settings, bot_id))


@bp.delete("/v1/bots/<bot_id>/offloading")
@documented(
    "Remove the offloading integration", auth="admin", answers={204: None}, tags=["offloading"]
)
def delete_offloading(bot_id: str) -> tuple[str, int]:
    s = services()
    unanswered = offloading.remove(s.redis, bot_id)
    conversation_store.give_up_offloads(s.redis, s.settings, s.sender, unanswered)
    conversation_store.give_paused_back(s.redis, s.settings, s.sender, bot_id)
    return "", 204
