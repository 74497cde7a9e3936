"""Who may open the dashboard, and the forms' protection against cross-site requests.

A login (the admin token typed into the login form) becomes a session kept in Redis,
`sb:dashboard-session:<hash of its id>`, holding the hash of the admin token it was opened
with and the session's CSRF token. The browser holds only the session's random id, in the
cookie `sb_session`: HttpOnly, SameSite=Strict, Secure whenever the dashboard is served
over HTTPS (or SWITCHBOARD_PUBLIC_URL is https), limited to /dashboard, and gone after
`DASHBOARD_SESSION_TTL` (12 h). A session ends when its admin token stops being valid.

Every form that changes something carries the session's CSRF token, and the token is
checked before the change. The admin bearer header works too, without a session and
without CSRF (a header is never sent by another site's form).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import g, redirect, request, url_for
from werkzeug.wrappers import Response

from broker.auth import admin_tokens
from broker.core import clock, ids, keys
from broker.core.defaults import DASHBOARD_SESSION_TTL
from broker.core.errors import Forbidden, Unauthorized
from web.auth import bearer_token, client_address, throttled
from web.request_body import form_fields
from web.services import services

log = logging.getLogger(__name__)

COOKIE = "sb_session"
#: The login form's own CSRF token, before there is a session (double submit).
LOGIN_COOKIE = "sb_login"
PATH = "/dashboard"


@dataclass(frozen=True)
class Session:
    """A signed-in operator: by session (with its CSRF token), or by bearer header."""

    csrf: str = ""
    by_header: bool = False


def _secure() -> bool:
    return request.is_secure or services().settings.public_url.startswith("https://")


def _set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        secure=_secure(),
        httponly=True,
        samesite="Strict",
    )


def current() -> Session | None:
    """The operator of this request, or None."""
    if "dashboard_session" in g:
        found: Session | None = g.dashboard_session
        return found
    s = services()
    found = None
    if (token := bearer_token()) is not None:
        with throttled("admin"):
            if not admin_tokens.is_valid(s.redis, s.settings, token):
                raise Unauthorized("that admin token is not valid")
        found = Session(by_header=True)
    elif session_id := request.cookies.get(COOKIE):
        stored = s.redis.hgetall(keys.dashboard_session(ids.token_hash(session_id)))
        if stored and admin_tokens.is_valid_hash(s.redis, s.settings, stored["tokenHash"]):
            found = Session(csrf=stored["csrf"])
    g.dashboard_session = found
    return found


def require() -> Response | None:
    """Let a signed-in operator through. Send a browser asking for a page without a login to
    the login form; refuse a script without one, a change (a form sent after the session
    ended) or a bearer token that is not valid with 401."""
    if request.endpoint in ("dashboard.login_form", "dashboard.login"):
        return None
    if current() is not None:
        return None
    if "Authorization" in request.headers:
        raise Unauthorized("that admin token is not valid")
    if request.method != "GET":
        raise Unauthorized("sign in to the dashboard again: the session has ended")
    if not wants_html():
        raise Unauthorized("sign in to the dashboard, or send an admin token as a bearer")
    wanted = request.full_path.rstrip("?")
    return redirect(url_for("dashboard.login_form", next=wanted), 303)


def wants_html() -> bool:
    """A browser asks for HTML by name; a script or a probe that does not gets a JSON error."""
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def check_csrf() -> None:
    """Refuse a change whose form does not carry this session's CSRF token."""
    session = current()
    if request.method != "POST" or session is None or session.by_header:
        return
    given = form_fields().get("csrf", "")
    if not hmac.compare_digest(session.csrf.encode(), given.encode()):
        raise Forbidden("the form has expired or was not sent by the dashboard; reload the page")


def login_form_token() -> tuple[str, bool]:
    """The login form's CSRF token, and whether it is new (its cookie must be set)."""
    found = request.cookies.get(LOGIN_COOKIE, "")
    if len(found) >= 32:
        return found, False
    return secrets.token_urlsafe(32), True


def set_login_cookie(response: Response, token: str) -> None:
    _set_cookie(response, LOGIN_COOKIE, token, DASHBOARD_SESSION_TTL)


def log_in(token: str, form_csrf: str) -> str:
    """Open a session with the admin token typed in; returns the session's id for the
    cookie. Refused when the token is not an admin token or the form was not ours."""
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), form_csrf.encode()):
        raise Forbidden("the login form has expired or was not sent by the dashboard")
    s = services()
    with throttled("admin"):
        if not token or not admin_tokens.is_valid(s.redis, s.settings, token):
            log.warning("dashboard login refused from %s: not an admin token", client_address())
            raise Unauthorized("that admin token is not valid")
    session_id = secrets.token_urlsafe(32)
    key = keys.dashboard_session(ids.token_hash(session_id))
    pipe = s.redis.pipeline(transaction=True)
    pipe.hset(
        key,
        mapping={
            "tokenHash": ids.token_hash(token),
            "csrf": secrets.token_urlsafe(32),
            "createdAt": clock.iso(clock.now()),
        },
    )
    pipe.expire(key, DASHBOARD_SESSION_TTL)
    pipe.execute()
    return session_id


def start(response: Response, session_id: str) -> Response:
    _set_cookie(response, COOKIE, session_id, DASHBOARD_SESSION_TTL)
    response.delete_cookie(LOGIN_COOKIE, path=PATH)
    return response


def log_out(response: Response) -> Response:
    if session_id := request.cookies.get(COOKIE):
        services().redis.delete(keys.dashboard_session(ids.token_hash(session_id)))
    response.delete_cookie(COOKIE, path=PATH)
    return response


def safe_next(target: str | None) -> str:
    """Where to go after the login: a path of the dashboard, never another site, and nothing a
    `Location` header cannot hold (control characters, which a redirect would refuse)."""
    if not target or not target.isprintable():
        return PATH
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PATH):
        return PATH
    return target
