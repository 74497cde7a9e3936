"""The API document (`/openapi.json`) and its human-readable reference page (`/docs`)."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template
from markupsafe import Markup, escape

from web import apidoc, page_headers
from web.apidoc import HTML, documented

bp = Blueprint("docs", __name__)
bp.after_request(page_headers.protected)


@bp.get("/openapi.json")
@documented(
    "This API document (OpenAPI 3.1)", auth="none", answers={200: apidoc.ANY_JSON}, tags=["docs"]
)
def openapi_json() -> Response:
    return jsonify(apidoc.openapi(current_app))


@bp.get("/docs")
@documented("The API reference page", auth="none", answers={200: HTML}, tags=["docs"])
def reference_page() -> str:
    document = apidoc.openapi(current_app)
    operations = [
        {"path": path, "method": method.upper(), **operation}
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    return render_template(
        "docs.html",
        info=document["info"],
        operations=operations,
        schemas=document["components"]["schemas"],
        auth=apidoc.AUTH_DESCRIPTIONS,
        pretty=_pretty,
        ref_name=_ref_name,
        prose=_prose,
    )


_CODE_SPAN = re.compile(r"`([^`]+)`")


def _prose(text: str) -> Markup:
    """Escaped text, with `code` spans shown as code, as the route descriptions write them."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text))))


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False)


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None
