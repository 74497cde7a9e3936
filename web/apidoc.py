"""The API document: route metadata recorded by `@documented`, turned into OpenAPI 3.1.

Every view function carries a `RouteDoc`; `openapi(app)` walks `app.url_map` and
`undocumented(app)` names the routes that lack one, so a test can refuse them.
The pydantic models named here are the same ones the handlers validate with.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from broker import __version__

#: Who may call a route: the admin bearer token, the admin token or a bot-scoped
#: API token, a channel access token, the verify token in the body (legacy
#: inbound), the metrics token when one is set, the dashboard's session
#: cookie or admin token, or anyone.
Auth = Literal[
    "admin", "admin_or_bot_token", "channel", "verify_token", "metrics", "dashboard", "none"
]


@dataclass(frozen=True)
class Content:
    """An answer body that is not a pydantic model: plain text, HTML, or free JSON."""

    media_type: str
    description: str
    example: str | None = None


PLAIN_TEXT = Content("text/plain", "plain text")
HTML = Content("text/html", "an HTML page")
ANY_JSON = Content("application/json", "a JSON document")

#: What an answer carries: a model, another kind of content, or nothing (e.g. 204).
Answer = type[BaseModel] | Content | None


@dataclass(frozen=True)
class RouteDoc:
    summary: str
    auth: Auth
    answers: Mapping[int, Answer]
    body: type[BaseModel] | None = None
    body_media_type: str = "application/json"
    body_required: bool = True
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    description: str = ""
    tags: tuple[str, ...] = ()


F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "__apidoc__"


def documented(
    summary: str,
    *,
    auth: Auth,
    answers: Mapping[int, Answer],
    body: type[BaseModel] | None = None,
    body_media_type: str = "application/json",
    body_required: bool = True,
    query: type[BaseModel] | None = None,
    errors: Iterable[int] = (),
    description: str = "",
    tags: Iterable[str] = (),
) -> Callable[[F], F]:
    """Record what a route takes and answers.

    `answers` maps each success status to its body; `errors` lists the error statuses
    particular to the route. The generic ones are added by the generator: 400, 413,
    415 and 422 for routes with a body, 401 (and 403) for authenticated routes, 404 for
    routes with path parameters, 422 for routes with query parameters, 429 for
    channel routes.
    """
    doc = RouteDoc(
        summary=summary,
        auth=auth,
        answers=dict(answers),
        body=body,
        body_media_type=body_media_type,
        body_required=body_required,
        query=query,
        errors=tuple(errors),
        description=description,
        tags=tuple(tags),
    )

    def record(view: F) -> F:
        setattr(view, _ATTRIBUTE, doc)
        return view

    return record


def doc_of(view: Callable[..., Any]) -> RouteDoc | None:
    found = getattr(view, _ATTRIBUTE, None)
    return found if isinstance(found, RouteDoc) else None


# ---------------------------------------------------------------------------
# The error body every route shares (SPEC 1c)


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorAnswer(BaseModel):
    """An error: `{"error": {"code", "message", "field"?}}`."""

    error: ErrorDetail


# ---------------------------------------------------------------------------
# The generator


@dataclass(frozen=True)
class Route:
    path: str  # OpenAPI form: /v1/bots/{bot_id}
    method: str  # lower case
    endpoint: str
    params: tuple[str, ...]
    doc: RouteDoc


_SKIPPED_ENDPOINTS = {"static"}
_SKIPPED_METHODS = {"HEAD", "OPTIONS"}


_RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _camel(name: str) -> str:
    """`bot_id` -> `botId`: path parameters are named as SPEC names them."""
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _openapi_path(rule: str) -> str:
    """`/v1/bots/<bot_id>` -> `/v1/bots/{botId}`."""
    return _RULE_VARIABLE.sub(lambda m: "{" + _camel(m.group(1)) + "}", rule)


def routes(app: Flask) -> list[Route]:
    """Every documented (path, method) of the app, in path order."""
    found: list[Route] = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in _SKIPPED_ENDPOINTS:
            continue
        doc = doc_of(app.view_functions[rule.endpoint])
        if doc is None:
            continue
        for method in sorted((rule.methods or set()) - _SKIPPED_METHODS):
            found.append(
                Route(
                    path=_openapi_path(rule.rule),
                    method=method.lower(),
                    endpoint=rule.endpoint,
                    params=tuple(sorted(_camel(name) for name in rule.arguments)),
                    doc=doc,
                )
            )
    return sorted(found, key=lambda r: (r.path, r.method))


def undocumented(app: Flask) -> list[str]:
    """`METHOD /rule` for every route whose view has no `@documented`."""
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in _SKIPPED_ENDPOINTS:
            continue
        if doc_of(app.view_functions[rule.endpoint]) is None:
            methods = ",".join(sorted((rule.methods or set()) - _SKIPPED_METHODS))
            missing.append(f"{methods} {rule.rule}")
    return sorted(missing)


_ERROR_DESCRIPTIONS = {
    400: "The body is not valid JSON, or the request is malformed.",
    401: "No credentials, or credentials that are not valid.",
    403: "The credentials do not allow this.",
    404: "Nothing with that id, or no such route.",
    405: "The route does not take that method.",
    409: "The request conflicts with the current state.",
    413: "The body is larger than the configured limit.",
    415: "The body is not JSON.",
    422: "The body or a parameter does not validate; `field` names the faulty path.",
    429: "Too many requests; wait for the seconds in `Retry-After`.",
    502: "The endpoint the request depends on did not answer as expected.",
    503: "Not ready.",
}

_SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    "admin": [{"adminToken": []}],
    "admin_or_bot_token": [{"adminToken": []}, {"botApiToken": []}],
    "channel": [{"channelAccessToken": []}],
    "verify_token": [],
    "metrics": [{}, {"metricsToken": []}],
    "dashboard": [{"dashboardSession": []}, {"adminToken": []}],
    "none": [],
}

_SECURITY_SCHEMES = {
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "SWITCHBOARD_ADMIN_TOKEN, or a token made with `switchboard token create`.",
    },
    "botApiToken": {"type": "http", "scheme": "bearer", "description": "A bot-scoped API token."},
    "channelAccessToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The access token of the Webhook channel named in the path.",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "SWITCHBOARD_METRICS_TOKEN, when it is set.",
    },
    "dashboardSession": {"type": "apiKey", "in": "cookie", "name": "session"},
}

AUTH_DESCRIPTIONS: dict[Auth, str] = {
    "admin": "admin bearer token",
    "admin_or_bot_token": "admin bearer token or the bot's API token",
    "channel": "the channel's access token (bearer)",
    "verify_token": "the channel's verify token, in the body",
    "metrics": "open, or the metrics bearer token when SWITCHBOARD_METRICS_TOKEN is set",
    "dashboard": "the dashboard session cookie or an admin bearer token",
    "none": "open",
}


def error_statuses(route: Route) -> list[int]:
    """The error statuses a route may answer, generic ones included."""
    doc = route.doc
    statuses = set(doc.errors)
    if doc.body is not None:
        statuses |= {400, 413, 415, 422}
    if doc.query is not None:
        statuses.add(422)
    if doc.auth not in ("none", "metrics"):
        statuses.add(401)
    if doc.auth in ("admin", "admin_or_bot_token"):
        # A bot's API token on a route it does not open.
        statuses.add(403)
    if route.params:
        statuses.add(404)
    if doc.auth == "channel":
        statuses.add(429)
    return sorted(s for s in statuses if s not in doc.answers)


#: A model and the side it is seen from: what a client sends, or what it is answered.
ModelKey = tuple[Any, JsonSchemaMode]


def _models(found: list[Route]) -> tuple[dict[ModelKey, Any], dict[str, Any]]:
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorAnswer, "serialization"): None
    }
    for route in found:
        for model in (route.doc.body, route.doc.query):
            if model is not None:
                wanted[(model, "validation")] = None
        for answer in route.doc.answers.values():
            if isinstance(answer, type):
                wanted[(answer, "serialization")] = None
    refs, defs = models_json_schema(list(wanted), ref_template="#/components/schemas/{model}")
    return dict(refs), dict(defs.get("$defs", {}))


def _content(answer: Answer, refs: Mapping[ModelKey, Any]) -> dict[str, Any]:
    if answer is None:
        return {}
    if isinstance(answer, Content):
        schema: dict[str, Any] = (
            {"type": "string"} if answer.media_type != ANY_JSON.media_type else {}
        )
        if answer.example is not None:
            schema["const"] = answer.example
        return {"content": {answer.media_type: {"schema": schema}}}
    return {"content": {"application/json": {"schema": refs[(answer, "serialization")]}}}


def _describe(answer: Answer, status: int) -> str:
    if isinstance(answer, Content):
        return answer.description
    if isinstance(answer, type):
        return (answer.__doc__ or answer.__name__).strip().splitlines()[0]
    return "No body." if status == 204 else "Done."


def _parameters(route: Route, query_schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.params
    ]
    if query_schema is not None:
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
            entry: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": {k: v for k, v in schema.items() if k != "title"},
            }
            if "description" in schema:
                entry["description"] = schema["description"]
            params.append(entry)
    return params


def _operation(
    route: Route,
    refs: Mapping[ModelKey, Any],
    defs: Mapping[str, Any],
) -> dict[str, Any]:
    doc = route.doc
    operation: dict[str, Any] = {
        "operationId": route.endpoint.replace(".", "_"),
        "summary": doc.summary,
        "security": _SECURITY[doc.auth],
        "x-auth": doc.auth,
    }
    if doc.description:
        operation["description"] = doc.description
    operation["tags"] = list(doc.tags) or [route.endpoint.split(".")[0]]
    query_schema = None
    if doc.query is not None:
        ref = refs[(doc.query, "validation")]["$ref"].rsplit("/", 1)[-1]
        query_schema = defs[ref]
    params = _parameters(route, query_schema)
    if params:
        operation["parameters"] = params
    if doc.body is not None:
        operation["requestBody"] = {
            "required": doc.body_required,
            "content": {doc.body_media_type: {"schema": refs[(doc.body, "validation")]}},
        }
    answers: dict[str, Any] = {}
    for status, answer in sorted(doc.answers.items()):
        answers[str(status)] = {"description": _describe(answer, status), **_content(answer, refs)}
    error_body = {"content": {"application/json": {"schema": refs[(ErrorAnswer, "serialization")]}}}
    for status in error_statuses(route):
        error: dict[str, Any] = {
            "description": _ERROR_DESCRIPTIONS.get(status, "An error."),
            **error_body,
        }
        if status == 429:
            error["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
            }
        answers[str(status)] = error
    operation["responses"] = answers
    return operation


def openapi(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every documented route of `app`."""
    found = routes(app)
    refs, defs = _models(found)
    paths: dict[str, dict[str, Any]] = {}
    for route in found:
        paths.setdefault(route.path, {})[route.method] = _operation(route, refs, defs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard",
            "version": __version__,
            "description": "Message-queue based event broker for chatbot channels.",
        },
        "paths": paths,
        "components": {"schemas": defs, "securitySchemes": _SECURITY_SCHEMES},
    }
