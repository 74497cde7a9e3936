"""Reading JSON bodies and query parameters, with the errors docs/wire-contract.md §1c asks for."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel
from werkzeug.exceptions import RequestEntityTooLarge

from broker.core.errors import BadRequest, SwitchboardError, ValidationFailed
from broker.core.validation import parse

Q = TypeVar("Q", bound=BaseModel)


class UnsupportedMediaType(SwitchboardError):
    status = 415
    code = "unsupported_media_type"


def json_body() -> Any:
    """The request's JSON body: 413 when it is over the limit, 415 when it is not JSON,
    400 when it does not parse (NaN and Infinity are not JSON)."""
    raw = _body_bytes()
    if not request.is_json:
        raise UnsupportedMediaType("send the body as JSON, with 'Content-Type: application/json'")
    try:
        return json.loads(raw, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise BadRequest("the body is nested too deeply") from exc


def _body_bytes() -> bytes:
    """The body; 413 when it is over MAX_CONTENT_LENGTH, whether or not it has a length.

    A body without a length (chunked) is cut at the limit by Werkzeug without an
    error; one more byte on the server's stream tells that it was longer.
    """
    raw = request.get_data(cache=True)
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if (
        limit is not None
        and request.content_length is None
        and len(raw) >= limit
        and request.environ.get("wsgi.input_terminated")
        and request.environ["wsgi.input"].read(1)
    ):
        raise RequestEntityTooLarge()
    return raw


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def refuse_large_bodies() -> None:
    """413 for a declared length over the limit, also on routes that never read the body."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()


def json_object() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", field="body")
    return body


def query_args(model: type[Q]) -> Q:
    """The query string, validated by `model`; an empty value counts as absent."""
    given = {name: value for name, value in request.args.items() if value != ""}
    return parse(model, given)
