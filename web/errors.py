"""Every error answer is `{"error": {"code", "message", "field"?, "errors"?}}`
(docs/wire-contract.md §1c); `errors` lists every fault of a bot definition.

Redis that cannot serve us (unreachable, read-only, out of memory) is `503 unavailable` with
`Retry-After`. An answer to a request whose body was not read (a refusal, or a route that
takes no body) says `Connection: close`, so that the unread body is never taken for the
client's next request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, current_app, jsonify
from redis.exceptions import RedisClusterException, RedisError
from werkzeug.exceptions import HTTPException

from broker.bots.faults import DefinitionInvalid
from broker.core import logs
from broker.core.connection import SHORT_HERE, unavailable_reason
from broker.core.defaults import UNAVAILABLE_RETRY_AFTER
from broker.core.errors import RateLimited, SwitchboardError, Unavailable
from web.redis_gate import remember_error
from web.request_body import body_was_read

log = logging.getLogger(__name__)
#: Says when Redis answers again after the trouble logged here.
redis_outage = logs.RedisOutage(log)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
}


@dataclass(frozen=True)
class ErrorAnswer:
    """An error answer, whatever serves it: status, JSON document, extra headers."""

    status: int
    document: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def error_document(
    code: str,
    message: str,
    field: str | None = None,
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    if errors:
        error["errors"] = errors
    return {"error": error}


def error_answer(exc: Exception) -> ErrorAnswer:
    """The answer to `exc`: ours as it says; Redis that cannot serve us 503 with
    `Retry-After`; anything else a bug, logged, 500."""
    # Any error: a bare OSError too, which is how this process's own shortage of file
    # descriptors can reach us from redis-py.
    reason = unavailable_reason(exc)
    if reason is not None:
        # The reason in the text, not a value: each reason is a kind of line of its own
        # where repeats are thinned out (`logs.Repeats`).
        log.warning(f"Redis is {reason}: %s", type(exc).__name__)
        if reason != SHORT_HERE:  # Redis itself is well: no "reachable again" to say
            redis_outage.began()
        exc = Unavailable(
            f"the service's storage is {reason}; try again shortly",
            retry_after=UNAVAILABLE_RETRY_AFTER,
        )
    if not isinstance(exc, SwitchboardError):
        log.error("unhandled error", exc_info=exc)
        return ErrorAnswer(
            500, error_document("internal_error", "an internal error occurred; it was logged")
        )
    faults = exc.faults if isinstance(exc, DefinitionInvalid) else []
    headers = {}
    if isinstance(exc, RateLimited | Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    document = error_document(exc.code, exc.message, exc.field, [f.view() for f in faults])
    return ErrorAnswer(exc.status, document, headers)


def http_error_answer(exc: HTTPException) -> ErrorAnswer:
    """The answer to Werkzeug's own refusals: no such route, a method it does not take, ..."""
    status = exc.code or 500
    message = exc.description or exc.name
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        message = f"the request body is larger than the limit of {limit} bytes"
    allow = exc.get_response().headers.get("Allow") if status == 405 else None
    document = error_document(_CODES.get(status, "http_error"), message)
    return ErrorAnswer(status, document, {"Allow": allow} if allow else {})


def _flask_answer(exc: Exception) -> Response:
    remember_error(exc)
    return json_response(error_answer(exc))


def json_response(answer: ErrorAnswer) -> Response:
    response = jsonify(answer.document)
    response.status_code = answer.status
    response.headers.update(answer.headers)
    return response


def register(app: Flask) -> None:
    app.register_error_handler(SwitchboardError, _flask_answer)
    app.register_error_handler(RedisError, _flask_answer)
    app.register_error_handler(RedisClusterException, _flask_answer)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return json_response(http_error_answer(exc))

    app.register_error_handler(Exception, _flask_answer)

    @app.after_request
    def _close_after_unread_body(response: Response) -> Response:
        if not body_was_read():
            response.headers["Connection"] = "close"
        return response
