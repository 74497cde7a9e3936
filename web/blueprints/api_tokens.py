"""Bot-scoped API tokens: what an agent server uses on its bot's conversation actions."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from broker.auth import api_tokens
from broker.bots import bot_store
from broker.core.validation import parse
from web.apidoc import documented
from web.auth import require_admin
from web.queries import Pagination
from web.request_body import json_object_or_nothing, query_args
from web.schemas import ApiTokenList, CreateApiToken, CreatedApiToken
from web.services import services

bp = Blueprint("api_tokens", __name__)
bp.before_request(require_admin)


@bp.post("/v1/bots/<bot_id>/api-tokens")
@documented(
    "Make an API token of the bot; the token is shown this once",
    auth="admin",
    body=CreateApiToken,
    body_required=False,
    answers={201: CreatedApiToken},
    tags=["api tokens"],
)
def create_api_token(bot_id: str) -> tuple[Response, int]:
    body = parse(CreateApiToken, json_object_or_nothing())
    return jsonify(api_tokens.create(services().redis, bot_id, body.description)), 201


@bp.get("/v1/bots/<bot_id>/api-tokens")
@documented(
    "List the bot's API tokens, oldest first",
    auth="admin",
    query=Pagination,
    answers={200: ApiTokenList},
    tags=["api tokens"],
)
def list_api_tokens(bot_id: str) -> Response:
    r = services().redis
    bot_store.get(r, bot_id)
    query = query_args(Pagination)
    found = api_tokens.list_for_bot(r, bot_id)
    return jsonify(query.listing(query.of(found), len(found)))


@bp.delete("/v1/bots/<bot_id>/api-tokens/<token_id>")
@documented("Revoke an API token", auth="admin", answers={204: None}, tags=["api tokens"])
def revoke_api_token(bot_id: str, token_id: str) -> tuple[str, int]:
    api_tokens.revoke(services().redis, bot_id, token_id)
    return "", 204
