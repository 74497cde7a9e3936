"""Bearer-token checks: the admin token everywhere, a bot's API token on its agent route."""

from __future__ import annotations

from flask import request

from broker.auth import admin_tokens, api_tokens
from broker.core.errors import Forbidden, Unauthorized
from web.services import services


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _is_admin(token: str) -> bool:
    s = services()
    return admin_tokens.is_valid(s.redis, s.settings, token)


def require_admin() -> None:
    token = bearer_token()
    if token is None:
        raise Unauthorized("send an admin token as 'Authorization: Bearer <token>'")
    if _is_admin(token):
        return
    if api_tokens.bot_of(services().redis, token) is not None:
        raise Forbidden("an API token only opens its bot's conversation actions")
    raise Unauthorized("that admin token is not valid")


def require_admin_or_bot_token(bot_id: str) -> None:
    """The admin token, or an API token of `bot_id`."""
    token = bearer_token()
    if token is None:
        raise Unauthorized("send an admin or API token as 'Authorization: Bearer <token>'")
    if _is_admin(token):
        return
    owner = api_tokens.bot_of(services().redis, token)
    if owner is None:
        raise Unauthorized("that token is not valid")
    if owner != bot_id:
        raise Forbidden("that API token belongs to another bot")
