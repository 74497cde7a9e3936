"""Reading JSON bodies and query parameters, with the errors SPEC 1c asks for."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel

from broker.errors import BadRequest, SwitchboardError, ValidationFailed
from broker.validation import parse
from web.queries import Pagination

Q = TypeVar("Q", bound=BaseModel)


class UnsupportedMediaType(SwitchboardError):
    status = 415
    code = "unsupported_media_type"


def json_body() -> Any:
    """The request's JSON body: 415 when it is not JSON, 400 when it does not parse."""
    if not request.is_json:
        raise UnsupportedMediaType("send the body as JSON, with 'Content-Type: application/json'")
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc


def json_object() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", field="body")
    return body


def query_args(model: type[Q]) -> Q:
    """The query string, validated by `model`; an empty value counts as absent."""
    given = {name: value for name, value in request.args.items() if value != ""}
    return parse(model, given)


def page_args() -> tuple[int, int]:
    """`page` (from 1) and `limit` (default 50, at most 500)."""
    pagination = query_args(Pagination)
    return pagination.page, pagination.limit


def listing(items: list[Any], total: int, page: int, limit: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "limit": limit}
