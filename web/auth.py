"""Bearer-token checks for the management API."""

from __future__ import annotations

from flask import request

from broker import admin_tokens
from broker.errors import Unauthorized
from web.services import services


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def require_admin() -> None:
    token = bearer_token()
    if token is None:
        raise Unauthorized("send an admin token as 'Authorization: Bearer <token>'")
    s = services()
    if not admin_tokens.is_valid(s.redis, s.settings, token):
        raise Unauthorized("that admin token is not valid")
