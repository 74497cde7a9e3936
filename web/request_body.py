"""Reading JSON bodies and query parameters, with the errors SPEC 1c asks for."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from broker.errors import BadRequest, SwitchboardError, ValidationFailed


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


def page_args() -> tuple[int, int]:
    """`page` (from 1) and `limit` (default 50, at most 500)."""
    return _int_arg("page", 1, 1, 1_000_000), _int_arg("limit", 50, 1, 500)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValidationFailed(f"{name} must be a whole number", field=name) from exc
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be between {low} and {high}", field=name)
    return value


def listing(items: list[Any], total: int, page: int, limit: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "limit": limit}
