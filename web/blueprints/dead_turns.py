"""Dead letters of turns: messages whose bot turn kept failing, parked so that their
conversation goes on; listed, replayed and discarded by operators."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from broker.conversations import dead_turns
from web.answers import DeadTurn, DeadTurnList, DeadTurnReplayed
from web.apidoc import documented
from web.auth import require_admin
from web.queries import DeadTurnFilter
from web.request_body import query_args
from web.services import services

bp = Blueprint("dead_turns", __name__)
bp.before_request(require_admin)


@bp.get("/v1/turn-dead-letters")
@documented(
    "Dead letters of turns: messages whose bot turn kept failing, newest first",
    auth="admin",
    query=DeadTurnFilter,
    answers={200: DeadTurnList},
    description="A message whose turn fails `SWITCHBOARD_TURN_ATTEMPTS` times is parked here "
    "with the error of its last try, and its conversation goes on with its next message.",
    tags=["dead letters of turns"],
)
def list_dead_turns() -> Response:
    query = query_args(DeadTurnFilter)
    items, total = dead_turns.list_page(
        services().redis, offset=query.offset, limit=query.limit, bot_id=query.botId
    )
    return jsonify(query.listing(items, total))


@bp.get("/v1/turn-dead-letters/<dead_turn_id>")
@documented(
    "Read a dead letter of turns",
    auth="admin",
    answers={200: DeadTurn},
    tags=["dead letters of turns"],
)
def get_dead_turn(dead_turn_id: str) -> Response:
    return jsonify(dead_turns.load(services().redis, dead_turn_id).view())


@bp.post("/v1/turn-dead-letters/<dead_turn_id>/replay")
@documented(
    "Put the message back at the end of its conversation's inbox, for a new turn",
    auth="admin",
    answers={202: DeadTurnReplayed},
    tags=["dead letters of turns"],
)
def replay_dead_turn(dead_turn_id: str) -> tuple[Response, int]:
    s = services()
    dead_turns.replay(s.redis, s.settings, s.sender, dead_turn_id)
    return jsonify({"id": dead_turn_id, "replayed": True}), 202


@bp.delete("/v1/turn-dead-letters/<dead_turn_id>")
@documented(
    "Discard a dead letter of turns",
    auth="admin",
    answers={204: None},
    tags=["dead letters of turns"],
)
def discard_dead_turn(dead_turn_id: str) -> tuple[str, int]:
    dead_turns.discard(services().redis, dead_turn_id)
    return "", 204
