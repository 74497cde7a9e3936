"""Reading JSON bodies and query parameters, with the errors docs/wire-contract.md §1c asks for."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import parse_options_header

from broker.bots.faults import DefinitionInvalid, Fault
from broker.core import strict_json
from broker.core.errors import BadRequest, SwitchboardError, ValidationFailed
from broker.core.validation import parse

Q = TypeVar("Q", bound=BaseModel)

log = logging.getLogger(__name__)


class UnsupportedMediaType(SwitchboardError):
    status = 415
    code = "unsupported_media_type"


#: Set in the WSGI environment once the whole body has been read.
_BODY_READ = "switchboard.body_read"


def json_document(raw: bytes, content_type: str | None, *, unique_keys: bool = False) -> Any:
    """A JSON body, read strictly (`broker.core.strict_json`): 415 when it is not JSON, 400
    when it does not parse (NaN, Infinity, a number out of range, bytes that are not UTF-8
    outside a string) or is nested too deeply, 422 naming the field when a string in it is
    not valid Unicode (a lone surrogate, bytes that are not UTF-8) or, with `unique_keys`,
    when an object in it holds a key twice."""
    if not is_json(content_type):
        raise UnsupportedMediaType("send the body as JSON, with 'Content-Type: application/json'")
    try:
        return strict_json.loads(raw, unique_keys=unique_keys)
    except strict_json.InvalidText as exc:
        raise ValidationFailed(str(exc), field=exc.field) from None
    except strict_json.DuplicateKey as exc:
        if exc.field == "definition" or exc.field.startswith(("definition.", "definition[")):
            # As every other fault of a definition: listed in `errors` too.
            raise DefinitionInvalid([Fault(exc.field, "is given twice")]) from None
        raise ValidationFailed("is given twice", field=exc.field) from None
    except strict_json.TooDeep as exc:
        raise BadRequest(f"the body is nested too deeply: {exc}") from None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def is_json(content_type: str | None) -> bool:
    """Whether a `Content-Type` says JSON, as Flask's `request.is_json` tells."""
    mimetype = parse_options_header(content_type or "")[0].lower()
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def form_fields() -> MultiDict[str, str]:
    """The request's form fields; 400 when the body cannot be read, as for JSON bodies."""
    if not request.environ.get(_BODY_READ):
        body_bytes()
    return request.form


def body_was_read() -> bool:
    """True when the request has no body, or its body was read to the end."""
    if request.environ.get(_BODY_READ):
        return True
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    return not chunked and not request.content_length


def body_bytes() -> bytes:
    """The request's body; 413 when it is over MAX_CONTENT_LENGTH, whether or not it has a length;
    400 when it cannot be read (a malformed chunked body, a client that went away).

    A body without a length (chunked) is cut at the limit by Werkzeug without an
    error; one more byte on the server's stream tells that it was longer.
    """
    try:
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
    except HTTPException:
        raise
    except Exception as exc:  # the server's own reader: its errors are not ours to name
        log.info("a request body could not be read: %s", type(exc).__name__)
        raise BadRequest(
            "the request body could not be read (is its chunked encoding valid?)"
        ) from None
    request.environ[_BODY_READ] = True
    return raw


def refuse_large_bodies() -> None:
    """413 for a declared length over the limit, also on routes that never read the body."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()


def json_object() -> dict[str, Any]:
    """The JSON object of a management request's body: a key given twice in it is 422 (a
    bot definition, say, would lose what was written first)."""
    return json_object_of(body_bytes(), request.content_type, unique_keys=True)


def json_object_or_nothing() -> dict[str, Any]:
    """The JSON object of a body that may be left out: {} for an empty one, whether it came
    with a length or chunked. A key given twice is 422, as in `json_object`."""
    raw = body_bytes()
    return json_object_of(raw, request.content_type, unique_keys=True) if raw else {}


def json_object_of(
    raw: bytes, content_type: str | None, *, unique_keys: bool = False
) -> dict[str, Any]:
    """A JSON body (`json_document`) that must be an object. Inbound messages are read
    without `unique_keys`, which would cost the parser its fast path."""
    body = json_document(raw, content_type, unique_keys=unique_keys)
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", field="body")
    return body


def query_args(model: type[Q]) -> Q:
    """The query string, validated by `model`; an empty value counts as absent."""
    given = {name: value for name, value in request.args.items() if value != ""}
    return parse(model, given)
