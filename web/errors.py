"""Every error answer is `{"error": {"code", "message", "field"?, "errors"?}}`
(docs/wire-contract.md §1c); `errors` lists every fault of a bot definition."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from broker.bots.faults import DefinitionInvalid
from broker.core.errors import RateLimited, SwitchboardError

log = logging.getLogger(__name__)

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


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    errors: list[dict[str, str]] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    if errors:
        error["errors"] = errors
    response = jsonify({"error": error})
    response.status_code = status
    return response


def register(app: Flask) -> None:
    @app.errorhandler(SwitchboardError)
    def _ours(exc: SwitchboardError) -> Response:
        faults = exc.faults if isinstance(exc, DefinitionInvalid) else []
        response = error_response(
            exc.status, exc.code, exc.message, exc.field, [f.view() for f in faults]
        )
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"the request body is larger than the limit of {limit} bytes"
        response = error_response(status, _CODES.get(status, "http_error"), message)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _bug(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "an internal error occurred; it was logged")
