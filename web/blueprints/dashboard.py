"""The operators' dashboard (docs/wire-contract.md §6): server-rendered pages, a little
JavaScript for the live charts and tables, everything served by the app itself.

Behind the admin token: a login form opens a session (`web.dashboard_session`), or the
admin bearer header. Every form that changes something carries the session's CSRF token.
What the pages show comes from the indexes and counters the work keeps (`broker.overview`,
`broker.history`), never from a scan of the keyspace.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, get_args
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from redis.exceptions import RedisError
from werkzeug.exceptions import NotFound as NoSuchRoute
from werkzeug.wrappers import Response

from broker import history, overview
from broker.bots.bot import Version
from broker.channels import channel_store
from broker.conversations import conversation_store, dead_turns
from broker.conversations.conversation import Conversation
from broker.core import keys
from broker.core.connection import Redis
from broker.core.errors import (
    Forbidden,
    NotFound,
    RateLimited,
    SwitchboardError,
    Unauthorized,
    ValidationFailed,
)
from broker.delivery import delivery_index, endpoint_store, health, records, replay
from web import dashboard_session, page_headers
from web.apidoc import ANY_JSON, HTML, documented
from web.dashboard_forms import (
    FORM,
    ActionForm,
    DeadLetterPage,
    DeadTurnForm,
    DeliveryPage,
    LiveQuery,
    LoginForm,
    ReplayForm,
    TranscriptQuery,
    form,
)
from web.errors import ErrorAnswer, error_answer, http_error_answer, json_response
from web.queries import DeadTurnFilter, Pagination
from web.request_body import form_fields, query_args
from web.services import services

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
bp.before_request(dashboard_session.require)
bp.before_request(dashboard_session.check_csrf)
bp.after_request(page_headers.private)

#: What a page says after an action, by the code its redirect carries.
_NOTICES = {
    "enabled": "Endpoint enabled; its queues go on.",
    "disabled": "Endpoint disabled; its deliveries wait until it is enabled.",
    "replayed": "{n} of {m} delivery(ies) queued again.",
    "retried": "Its next attempt is made now.",
    "turns_replayed": "{n} of {m} message(s) back in their conversation's inbox.",
    "turns_discarded": "{n} of {m} dead letter(s) of turns discarded.",
}
#: A count a notice says: a non-negative integer, in ASCII digits.
_COUNT = re.compile(r"[0-9]{1,9}")
#: A page asked for without a login is sent to the login form.
_REDIRECT = {303: None}
#: Endpoints the overview shows, those in trouble first; the endpoints page has them all.
OVERVIEW_ENDPOINTS = 20
#: Past this many endpoints, a filter by endpoint is a text field rather than a list.
ENDPOINTS_LISTED = 100
_TAGS = ["dashboard"]


def _page(template: str, **context: Any) -> str:
    session = dashboard_session.current()
    return render_template(
        template,
        csrf=session.csrf if session else "",
        by_header=bool(session and session.by_header),
        notice=_notice(),
        **context,
    )


def _notice() -> str:
    """What the redirect after an action says was done; nothing for a query string that was
    not ours (its counts are not numbers: a link must not put words on the page)."""
    notice = _NOTICES.get(request.args.get("done", ""), "")
    counts = {name: request.args.get(name, "0") for name in ("n", "m")}
    if not all(_COUNT.fullmatch(count) for count in counts.values()):
        return ""
    return notice.format(**counts)


def _back(default: str, **done: str | int) -> Response:
    """Back to the page the form was on (a dashboard page, with its filters), saying what
    was done."""
    target = urlsplit(dashboard_session.safe_next(form_fields().get("back") or default))
    kept = [(k, v) for k, v in parse_qsl(target.query) if k not in ("done", "n", "m")]
    query = urlencode([*kept, *((name, str(value)) for name, value in done.items())])
    return redirect(f"{target.path}?{query}" if query else target.path, 303)


# --- signing in and out ------------------------------------------------------------------


@bp.get("/login")
@documented("The dashboard's login form", auth="none", answers={200: HTML}, tags=_TAGS)
def login_form() -> Response:
    return _login_page(request.args.get("next"))


def _login_page(next_page: str | None, error: str = "", status: int = 200) -> Response:
    token, new = dashboard_session.login_form_token()
    response = Response(
        render_template(
            "dashboard_login.html",
            csrf=token,
            next=dashboard_session.safe_next(next_page),
            error=error,
        ),
        status=status,
        mimetype="text/html",
    )
    if new:
        dashboard_session.set_login_cookie(response, token)
    return response


@bp.post("/login")
@documented(
    "Sign in with an admin token: sets the session cookie and goes to the dashboard",
    auth="none",
    body=LoginForm,
    body_media_type=FORM,
    answers={303: None, 401: HTML, 403: HTML, 429: HTML},
    description="A token that is not an admin token (401) or a form the dashboard did not "
    "send (403) gets the login form again, saying so, when the client asks for "
    "`text/html` (a browser does); any other client gets the JSON error.",
    tags=_TAGS,
)
def login() -> Response:
    given = form(LoginForm)
    try:
        session_id = dashboard_session.log_in(given.token, given.csrf)
    except (Unauthorized, Forbidden, RateLimited) as exc:
        if not dashboard_session.wants_html():
            raise
        page = _login_page(given.next, exc.message, exc.status)
        page.headers.update(error_answer(exc).headers)  # a 429's Retry-After
        return page
    response = redirect(dashboard_session.safe_next(given.next), 303)
    return dashboard_session.start(response, session_id)


def _error_page(exc: Exception) -> Response:
    """An error of a dashboard route: a page for a browser, the JSON error for a script."""
    return _answer_page(error_answer(exc))


def _answer_page(answer: ErrorAnswer) -> Response:
    if not dashboard_session.wants_html():
        return json_response(answer)
    page = render_template(
        "dashboard_error.html", status=answer.status, message=answer.document["error"]["message"]
    )
    response = Response(page, status=answer.status, mimetype="text/html")
    response.headers.update(answer.headers)
    return response


bp.register_error_handler(SwitchboardError, _error_page)
bp.register_error_handler(RedisError, _error_page)


@bp.app_errorhandler(NoSuchRoute)
def _no_such_page(exc: NoSuchRoute) -> Response:
    """A path under /dashboard that no route takes is a page for a browser too: no
    blueprint's handler sees a refusal made before a route is found."""
    answer = http_error_answer(exc)
    if request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/"):
        return _answer_page(answer)
    return json_response(answer)


@bp.post("/logout")
@documented(
    "Sign out: the session ends",
    auth="dashboard",
    body=ActionForm,
    body_media_type=FORM,
    body_required=False,
    answers=_REDIRECT,
    tags=_TAGS,
)
def logout() -> Response:
    form(ActionForm)
    return dashboard_session.log_out(redirect(url_for("dashboard.login_form"), 303))


# --- the overview ------------------------------------------------------------------------


@bp.get("")
@documented(
    "The overview: queues and throughput over the last hour (live), live processes, "
    "endpoints with their switches, the newest dead letters",
    auth="dashboard",
    answers={200: HTML, **_REDIRECT},
    tags=_TAGS,
)
def home() -> str:
    r = services().redis
    now = overview.take(r)
    # Those in trouble first, in the order of ENDPOINT_STATES (healthy is first there); only
    # those shown are read whole.
    rank = {state: n for n, state in enumerate(overview.ENDPOINT_STATES[1:])}
    states = now.endpoint_states
    shown = sorted(states, key=lambda e: rank.get(states[e], len(rank)))[:OVERVIEW_ENDPOINTS]
    endpoints = health.views(r, shown)
    newest_dead = records.views(r, r.zrevrange(keys.DEAD, 0, 9))
    return _page(
        "dashboard_home.html",
        now=now,
        queue_help=overview.QUEUES,
        size_text=overview.size_text,
        endpoints=endpoints,
        endpoints_total=len(states),
        dead=[d for d in newest_dead if d["status"] == "dead"],
        dead_total=now.queues["dead_letters"],
    )


@bp.get("/live")
@documented(
    "The charts' data: samples of the last hour after `since`, and one of now",
    auth="dashboard",
    query=LiveQuery,
    answers={200: ANY_JSON, **_REDIRECT},
    tags=_TAGS,
)
def live() -> Response:
    r = services().redis
    since = query_args(LiveQuery).since
    now = overview.take(r)
    return jsonify(
        {
            "series": history.series(r, since),
            "now": history.take_point(r, now),
            "overview": now.as_json(),
        }
    )


# --- endpoints ---------------------------------------------------------------------------


@bp.get("/endpoints")
@documented(
    "Every endpoint, oldest first, with its state and switches",
    auth="dashboard",
    query=Pagination,
    answers={200: HTML, **_REDIRECT},
    tags=_TAGS,
)
def endpoints() -> str:
    r = services().redis
    query = query_args(Pagination)
    found, total = endpoint_store.list_ids(r, query.offset, query.limit)
    return _page(
        "dashboard_endpoints.html", endpoints=health.views(r, found), total=total, query=query
    )


@bp.post("/endpoints/<endpoint_id>/enable")
@documented(
    "Enable an endpoint and resume its queues",
    auth="dashboard",
    body=ActionForm,
    body_media_type=FORM,
    body_required=False,
    answers=_REDIRECT,
    errors=[403],
    tags=_TAGS,
)
def enable_endpoint(endpoint_id: str) -> Response:
    form(ActionForm)
    health.enable(services().redis, endpoint_id)
    return _back(url_for("dashboard.home"), done="enabled")


@bp.post("/endpoints/<endpoint_id>/disable")
@documented(
    "Disable an endpoint: its deliveries wait",
    auth="dashboard",
    body=ActionForm,
    body_media_type=FORM,
    body_required=False,
    answers=_REDIRECT,
    errors=[403],
    tags=_TAGS,
)
def disable_endpoint(endpoint_id: str) -> Response:
    form(ActionForm)
    health.disable(services().redis, endpoint_id)
    return _back(url_for("dashboard.home"), done="disabled")


# --- deliveries and dead letters ---------------------------------------------------------


@bp.get("/dead-letters")
@documented(
    "Dead letters, newest first, with replay: one, those selected, or all of an endpoint",
    auth="dashboard",
    query=DeadLetterPage,
    answers={200: HTML, **_REDIRECT},
    tags=_TAGS,
)
def dead_letters() -> str:
    r = services().redis
    query = query_args(DeadLetterPage)
    page = delivery_index.dead_letter_page(
        r, offset=query.offset, limit=query.limit, endpoint_id=query.endpointId or None
    )
    return _page(
        "dashboard_dead_letters.html",
        items=page.items,
        total=page.total,
        query=query,
        endpoint_ids=endpoint_store.all_ids(r),
        listed=ENDPOINTS_LISTED,
    )


@bp.post("/dead-letters/replay")
@documented(
    "Replay dead letters: those selected, or every one of an endpoint",
    auth="dashboard",
    body=ReplayForm,
    body_media_type=FORM,
    answers=_REDIRECT,
    errors=[403],
    tags=_TAGS,
)
def replay_dead_letters() -> Response:
    r = services().redis
    given = form(ReplayForm)
    if given.scope == "endpoint":
        if not given.endpointId:
            raise ValidationFailed(
                "choose the endpoint whose dead letters to replay", field="endpointId"
            )
        chosen = delivery_index.dead_letter_ids(r, endpoint_id=given.endpointId)
    else:
        chosen = given.ids
    replayed = replay.replay_many(r, chosen)
    return _back(url_for("dashboard.dead_letters"), done="replayed", n=replayed, m=len(chosen))


@bp.get("/dead-turns")
@documented(
    "Dead letters of turns, newest first: messages whose bot turn kept failing, with "
    "replay and discard",
    auth="dashboard",
    query=DeadTurnFilter,
    answers={200: HTML, **_REDIRECT},
    tags=_TAGS,
)
def dead_turn_letters() -> str:
    query = query_args(DeadTurnFilter)
    items, total = dead_turns.list_page(
        services().redis, offset=query.offset, limit=query.limit, bot_id=query.botId
    )
    return _page("dashboard_dead_turns.html", items=items, total=total, query=query)


@bp.post("/dead-turns")
@documented(
    "Replay or discard the dead letters of turns selected",
    auth="dashboard",
    body=DeadTurnForm,
    body_media_type=FORM,
    answers=_REDIRECT,
    errors=[403],
    tags=_TAGS,
)
def act_on_dead_turns() -> Response:
    s = services()
    given = form(DeadTurnForm)
    done = 0
    for dead_turn_id in given.ids:
        try:
            if given.action == "replay":
                dead_turns.replay(s.redis, s.settings, s.sender, dead_turn_id)
            else:
                dead_turns.discard(s.redis, dead_turn_id)
        except NotFound:
            continue  # replayed or discarded meanwhile, by someone else
        done += 1
    notice = "turns_replayed" if given.action == "replay" else "turns_discarded"
    return _back(url_for("dashboard.dead_turn_letters"), done=notice, n=done, m=len(given.ids))


@bp.post("/dead-turns/<dead_turn_id>/replay")
@documented(
    "Replay one dead letter of turns",
    auth="dashboard",
    body=ActionForm,
    body_media_type=FORM,
    body_required=False,
    answers=_REDIRECT,
    errors=[403, 404],
    tags=_TAGS,
)
def replay_dead_turn(dead_turn_id: str) -> Response:
    form(ActionForm)
    s = services()
    dead_turns.replay(s.redis, s.settings, s.sender, dead_turn_id)
    return _back(url_for("dashboard.dead_turn_letters"), done="turns_replayed", n=1, m=1)


@bp.get("/deliveries")
@documented(
    "Deliveries, newest first, by status and endpoint",
    auth="dashboard",
    query=DeliveryPage,
    answers={200: HTML, **_REDIRECT},
    tags=_TAGS,
)
def deliveries() -> str:
    query = query_args(DeliveryPage)
    page = delivery_index.list_page(
        services().redis,
        offset=query.offset,
        limit=query.limit,
        status=query.status,
        endpoint_id=query.endpointId,
    )
    return _page(
        "dashboard_deliveries.html",
        items=page.items,
        total=page.total,
        scan_limited=page.scan_limited,
        scan_limit=delivery_index.SCAN_LIMIT,
        query=query,
        endpoint_ids=endpoint_store.all_ids(services().redis),
        listed=ENDPOINTS_LISTED,
    )


@bp.get("/deliveries/<delivery_id>")
@documented(
    "A delivery with every attempt: status, timing, error, the answer's first bytes",
    auth="dashboard",
    answers={200: HTML, **_REDIRECT},
    tags=_TAGS,
)
def delivery(delivery_id: str) -> str:
    return _page("dashboard_delivery.html", item=records.view(services().redis, delivery_id))


@bp.post("/deliveries/<delivery_id>/replay")
@documented(
    "Send a delivery again; one waiting for its next retry is tried now",
    auth="dashboard",
    body=ActionForm,
    body_media_type=FORM,
    body_required=False,
    answers=_REDIRECT,
    errors=[403],
    tags=_TAGS,
)
def replay_delivery(delivery_id: str) -> Response:
    form(ActionForm)
    outcome = replay.replay_one(services().redis, delivery_id)
    back = url_for("dashboard.delivery", delivery_id=delivery_id)
    if outcome is replay.Outcome.RETRIED_NOW:
        return _back(back, done="retried")
    return _back(back, done="replayed", n=int(outcome is replay.Outcome.REPLAYED), m=1)


# --- conversations -----------------------------------------------------------------------


@bp.get("/conversations/<bot_id>/<conversation:session_id>")
@bp.get("/conversations/<bot_id>")
@documented(
    "A conversation's transcript: what the user, the bot and agents said",
    auth="dashboard",
    query=TranscriptQuery,
    answers={200: HTML, **_REDIRECT},
    errors=[409],
    description="The conversation id is the path's last segment, or `sessionId` in the "
    "query where a path cannot hold it: a browser takes `.` and `..` out of a path.",
    tags=_TAGS,
)
def conversation(bot_id: str, session_id: str | None = None) -> str:
    r = services().redis
    query = query_args(TranscriptQuery)
    session_id = session_id if session_id is not None else query.sessionId
    if session_id is None:
        raise NotFound("name the conversation: /dashboard/conversations/<bot>/<conversation>")
    found = _conversation(r, bot_id, session_id, query)
    items, total = conversation_store.transcript_page(r, found, query.offset, query.limit)
    return _page(
        "dashboard_conversation.html",
        bot_id=bot_id,
        session_id=session_id,
        version=found.version,
        items=items,
        total=total,
        query=query,
    )


@bp.url_defaults
def _dot_segment_in_query(endpoint: str, values: dict[str, Any]) -> None:
    """A conversation whose id is a dot segment is linked with the id in the query: a
    browser would take it out of the path, and open another page or none."""
    if endpoint == "dashboard.conversation" and values.get("session_id") in (".", ".."):
        values["sessionId"] = values.pop("session_id")


def _conversation(r: Redis, bot_id: str, session_id: str, query: TranscriptQuery) -> Conversation:
    """The conversation a link names. A delivery does not say its bot version: without one,
    its channel's version is tried first, then the other (the channel may have changed
    version since)."""
    if query.version:
        return conversation_store.find(r, bot_id, query.version, session_id, query.channelId)
    first: Version = "LIVE"
    if query.channelId:
        with contextlib.suppress(NotFound):
            first = channel_store.get(r, query.channelId).version
    versions = [first, *(v for v in get_args(Version) if v != first)]
    for version in versions[:-1]:
        with contextlib.suppress(NotFound):
            return conversation_store.find(r, bot_id, version, session_id, query.channelId)
    return conversation_store.find(r, bot_id, versions[-1], session_id, query.channelId)
