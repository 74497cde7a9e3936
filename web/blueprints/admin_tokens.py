"""Admin tokens made with `switchboard token create`: listed (never the token itself) and
revoked (docs/wire-contract.md §6). SWITCHBOARD_ADMIN_TOKEN is not among them."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from broker.auth import admin_tokens
from web.answers import AdminTokenList
from web.apidoc import documented
from web.auth import require_admin
from web.queries import Pagination
from web.request_body import query_args
from web.services import services

bp = Blueprint("admin_tokens", __name__)
bp.before_request(require_admin)


@bp.get("/v1/admin-tokens")
@documented(
    "Admin tokens made with `switchboard token create`, oldest first",
    auth="admin",
    query=Pagination,
    answers={200: AdminTokenList},
    tags=["admin tokens"],
)
def list_admin_tokens() -> Response:
    query = query_args(Pagination)
    found = admin_tokens.list_all(services().redis)
    return jsonify(query.listing(query.of(found), len(found)))


@bp.delete("/v1/admin-tokens/<token_id>")
@documented(
    "Revoke an admin token: it stops working at once",
    auth="admin",
    answers={204: None},
    tags=["admin tokens"],
)
def revoke_admin_token(token_id: str) -> tuple[str, int]:
    admin_tokens.revoke(services().redis, token_id)
    return "", 204
