"""The API document: route metadata recorded by `@documented`, turned into OpenAPI 3.1.

Every view function carries a `RouteDoc`; `openapi(app)` walks `app.url_map` and
`undocumented(app)` names the routes that lack one, so a test can refuse them.
The pydantic models named here are the same ones the handlers validate with.

Why not spectree or flask-openapi3: both validate the body and query before the
handler runs, from `request.get_json(silent=True)`, so a bad token with a bad body is
answered 422 instead of 401, an unknown conversation 422 instead of 404, and a body
that is not JSON (or NaN, or an array) 422 instead of 400/415; an empty query value is
not taken as absent. Their documents describe answers by status phrase ("OK"), add a
422 to every route, and give query parameters a `title`; flask-openapi3 needs response
dicts written by hand for our `text/plain` answer and `Retry-After`, spectree cannot
say them. apispec with its pydantic plugin only assembles what this module builds: its
Flask plugin names path parameters `{bot_id}`, and it cannot expand a query model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, Literal, TypeVar

from flask import Flask
from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from werkzeug.routing import Rule

from broker import __version__
from broker.core.defaults import IDEMPOTENCY_KEY_MAX

#: Who may call a route; `_AUTH` says what each one means.
Auth = Literal[
    "admin", "admin_or_bot_token", "channel", "verify_token", "metrics", "dashboard", "none"
]


@dataclass(frozen=True)
class Content:
    """An answer body that is not a pydantic model: plain text, HTML, or free JSON."""

    media_type: str
    description: str
    example: str | None = None


HTML = Content("text/html", "an HTML page")
ANY_JSON = Content("application/json", "a JSON document")

#: What an answer carries: a model, another kind of content, or nothing (e.g. 204).
Answer = type[BaseModel] | Content | None


@dataclass(frozen=True)
class Header:
    """A request header a route reads (a header parameter in the document)."""

    name: str
    description: str
    schema: Mapping[str, Any]


#: The header of the two message routes that makes a retry safe (docs/wire-contract.md §1a).
IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    f"Any string of at most {IDEMPOTENCY_KEY_MAX} characters naming this message: a repeat "
    "with the same key in the next 24 h is acknowledged again and not processed twice; the "
    "same key with another message is `422`.",
    {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
)

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "__apidoc__"


@dataclass(frozen=True)
class RouteDoc:
    """What a route takes and answers; `@documented(summary, auth=..., answers=...)`
    records one on the view.

    `answers` maps each success status to its body; `errors` lists the error statuses
    particular to the route. The generic ones are added by the generator: the web
    server's own refusals on every route (`_SERVER_ERRORS`: 400, 405, 408, 413, 414, 431,
    503), 415 and 422 for routes with a body, 401 (and 403) for authenticated routes, 404
    for routes with path parameters, 422 for routes with query parameters, 429 for
    channel routes. `headers` are the request headers the route reads.
    """

    summary: str
    _: KW_ONLY
    auth: Auth
    answers: Mapping[int, Answer]
    body: type[BaseModel] | None = None
    body_media_type: str = "application/json"
    body_required: bool = True
    query: type[BaseModel] | None = None
    headers: Sequence[Header] = ()
    errors: Collection[int] = ()
    description: str = ""
    tags: Sequence[str] = ()

    def __call__(self, view: F) -> F:
        setattr(view, _ATTRIBUTE, self)
        return view


documented = RouteDoc


def _doc_of(view: Callable[..., Any]) -> RouteDoc | None:
    found = getattr(view, _ATTRIBUTE, None)
    return found if isinstance(found, RouteDoc) else None


# ---------------------------------------------------------------------------
# What the document says the same way on every route: errors (docs/wire-contract.md §1c) and auth


class FieldError(BaseModel):
    field: str = Field(description="The faulty path, as `field` gives the first one.")
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    errors: list[FieldError] | None = Field(
        default=None,
        description="Every fault, each with its path, where there can be many: a bot "
        "definition's (`field` and `message` tell the first).",
    )


class ErrorAnswer(BaseModel):
    """An error: `{"error": {"code", "message", "field"?, "errors"?}}`."""

    error: ErrorDetail


_ERROR_DESCRIPTIONS = {
    400: "The body is not valid JSON, or the request is malformed.",
    401: "No credentials, or credentials that are not valid.",
    403: "The credentials do not allow this.",
    404: "Nothing with that id, or no such route.",
    405: "The route does not take that method (`method_not_allowed`; `Allow` names those it "
    "takes).",
    408: "The request stopped arriving for 30 s, or was not whole after 60 s (`request_timeout`).",
    409: "The request conflicts with the current state.",
    413: "The body is larger than the configured limit (SWITCHBOARD_MAX_BODY_BYTES).",
    414: "The request line is longer than 4,094 bytes (`uri_too_long`).",
    415: "The body is not JSON, or it has a content coding (`gzip` and the like are not taken).",
    422: "The body or a parameter does not validate; `field` names the faulty path.",
    429: "Too many requests, or too many failed authentications from this client or against "
    "this target; wait for the seconds in `Retry-After`.",
    431: "More than 100 headers, or one over 8,190 bytes (`headers_too_large`).",
    502: "The endpoint the request depends on did not answer as expected.",
    503: "Redis is unreachable, read-only or out of memory (code `unavailable`); wait for the "
    "seconds in `Retry-After`.",
}

_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}

#: What the web server itself may answer any request, before a route sees it
#: (docs/architecture.md, "The web server"): a malformed request (400), a method the route
#: does not take (405), a request that does not arrive in time (408), a body over the limit,
#: declared or chunked (413), a request line or headers too long (414, 431), and Redis
#: unable to serve (503).
_SERVER_ERRORS = frozenset({400, 405, 408, 413, 414, 431, 503})

#: Each kind of auth: its security requirement in the document, and how /docs says it.
_AUTH: dict[Auth, tuple[list[dict[str, list[str]]], str]] = {
    "admin": ([{"adminToken": []}], "admin bearer token"),
    "admin_or_bot_token": (
        [{"adminToken": []}, {"botApiToken": []}],
        "admin bearer token or the bot's API token",
    ),
    "channel": ([{"channelAccessToken": []}], "the channel's access token (bearer)"),
    "verify_token": ([], "the channel's verify token, in the body"),
    "metrics": (
        [{}, {"metricsToken": []}],
        "open, or the metrics bearer token when SWITCHBOARD_METRICS_TOKEN is set",
    ),
    "dashboard": (
        [{"dashboardSession": []}, {"adminToken": []}],
        "the dashboard session cookie or an admin bearer token",
    ),
    "none": ([], "open"),
}

AUTH_DESCRIPTIONS: dict[Auth, str] = {auth: said for auth, (_, said) in _AUTH.items()}


def _bearer(description: str) -> dict[str, str]:
    return {"type": "http", "scheme": "bearer", "description": description}


_SECURITY_SCHEMES = {
    "adminToken": _bearer(
        "SWITCHBOARD_ADMIN_TOKEN, or a token made with `switchboard token create`."
    ),
    "botApiToken": _bearer("A bot-scoped API token."),
    "channelAccessToken": _bearer("The access token of the Webhook channel named in the path."),
    "metricsToken": _bearer("SWITCHBOARD_METRICS_TOKEN, when it is set."),
    "dashboardSession": {"type": "apiKey", "in": "cookie", "name": "sb_session"},
}


# ---------------------------------------------------------------------------
# The routes


@dataclass(frozen=True)
class _Route:
    path: str  # OpenAPI form: /v1/bots/{botId}
    method: str  # lower case
    endpoint: str
    params: tuple[str, ...]  # path parameters, sorted
    doc: RouteDoc


_RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _camel(name: str) -> str:
    """`bot_id` -> `botId`: path parameters are named as the wire contract names them."""
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _rules(app: Flask) -> Iterator[tuple[Rule, list[str], RouteDoc | None]]:
    """Each rule of the app but `static`, with its methods (sorted) and its RouteDoc."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static":
            methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
            yield rule, methods, _doc_of(app.view_functions[rule.endpoint])


def _routes(app: Flask) -> list[_Route]:
    """Every documented (path, method) of the app, in path order."""
    found = [
        _Route(
            path=_RULE_VARIABLE.sub(lambda m: "{" + _camel(m.group(1)) + "}", rule.rule),
            method=method.lower(),
            endpoint=rule.endpoint,
            params=tuple(sorted(_camel(name) for name in rule.arguments)),
            doc=doc,
        )
        for rule, methods, doc in _rules(app)
        if doc is not None
        for method in methods
    ]
    return sorted(found, key=lambda r: (r.path, r.method))


def undocumented(app: Flask) -> list[str]:
    """`METHOD /rule` for every route whose view has no `@documented`."""
    return sorted(
        f"{','.join(methods)} {rule.rule}" for rule, methods, doc in _rules(app) if doc is None
    )


def _error_statuses(route: _Route) -> list[int]:
    """The error statuses a route may answer, generic ones included."""
    doc = route.doc
    statuses = set(doc.errors) | _SERVER_ERRORS
    if doc.body is not None:
        statuses |= {415, 422}
    if doc.query is not None:
        statuses.add(422)
    if doc.auth not in ("none", "metrics"):
        statuses |= {401, 429}
    if doc.auth in ("admin", "admin_or_bot_token"):
        statuses.add(403)  # a bot's API token on a route it does not open
    if route.params:
        statuses.add(404)
    if doc.auth == "channel":
        statuses.add(429)
    return sorted(s for s in statuses if s not in doc.answers)


# ---------------------------------------------------------------------------
# The document


_COMPONENT = "#/components/schemas/"


class _Schemas:
    """Every model the routes name, as components: what a client sends is seen in
    pydantic's validation mode, what it is answered in serialization mode."""

    def __init__(self, routes: list[_Route]) -> None:
        wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
            (ErrorAnswer, "serialization"): None
        }
        for route in routes:
            for model in (route.doc.body, route.doc.query):
                if model is not None:
                    wanted[(model, "validation")] = None
            for answer in route.doc.answers.values():
                if isinstance(answer, type):
                    wanted[(answer, "serialization")] = None
        refs, defs = models_json_schema(list(wanted), ref_template=_COMPONENT + "{model}")
        self._refs: Mapping[tuple[Any, JsonSchemaMode], dict[str, Any]] = refs
        self.components: dict[str, Any] = defs.get("$defs", {})

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        """`{"$ref": ...}` to the model's component."""
        return self._refs[(model, mode)]

    def of(self, model: type[BaseModel]) -> dict[str, Any]:
        """The component of a model that a client sends."""
        name = self.ref(model, "validation")["$ref"].removeprefix(_COMPONENT)
        component: dict[str, Any] = self.components[name]
        return component

    def content(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        """The `content` of a JSON body of that model."""
        return {"content": {"application/json": {"schema": self.ref(model, mode)}}}


def _parameters(route: _Route, schemas: _Schemas) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.params
    ]
    params += [
        {
            "name": header.name,
            "in": "header",
            "required": False,
            "description": header.description,
            "schema": dict(header.schema),
        }
        for header in route.doc.headers
    ]
    if route.doc.query is not None:
        query = schemas.of(route.doc.query)
        for name, schema in query.get("properties", {}).items():
            param = {
                "name": name,
                "in": "query",
                "required": name in query.get("required", []),
                "schema": {k: v for k, v in schema.items() if k != "title"},
            }
            if "description" in schema:
                param["description"] = schema["description"]
            params.append(param)
    return params


def _answer(status: int, answer: Answer, schemas: _Schemas) -> dict[str, Any]:
    documented = _answer_body(status, answer, schemas)
    if status in (429, 503):  # e.g. /readyz's 503 (when Redis is why), the login form's 429
        documented["headers"] = _RETRY_AFTER
    return documented


def _answer_body(status: int, answer: Answer, schemas: _Schemas) -> dict[str, Any]:
    if isinstance(answer, Content):
        free_json = answer.media_type == ANY_JSON.media_type
        schema: dict[str, Any] = {} if free_json else {"type": "string"}
        if answer.example is not None:
            schema["const"] = answer.example
        content = {answer.media_type: {"schema": schema}}
        if status >= 400:  # a page for a browser that asks for it, the JSON error otherwise
            content.update(schemas.content(ErrorAnswer, "serialization")["content"])
        return {"description": answer.description, "content": content}
    if answer is not None:
        summary = (answer.__doc__ or answer.__name__).strip().splitlines()[0]
        return {"description": summary, **schemas.content(answer, "serialization")}
    return {"description": "No body." if status == 204 else "Done."}


def _error(status: int, schemas: _Schemas) -> dict[str, Any]:
    error = {
        "description": _ERROR_DESCRIPTIONS.get(status, "An error."),
        **schemas.content(ErrorAnswer, "serialization"),
    }
    if status in (429, 503):
        error["headers"] = _RETRY_AFTER
    return error


def _operation(route: _Route, schemas: _Schemas) -> dict[str, Any]:
    doc = route.doc
    operation: dict[str, Any] = {
        "operationId": route.endpoint.replace(".", "_"),
        "summary": doc.summary,
        "security": _AUTH[doc.auth][0],
        "x-auth": doc.auth,
    }
    if doc.description:
        operation["description"] = doc.description
    operation["tags"] = list(doc.tags) or [route.endpoint.split(".")[0]]
    if params := _parameters(route, schemas):
        operation["parameters"] = params
    if doc.body is not None:
        operation["requestBody"] = {
            "required": doc.body_required,
            "content": {doc.body_media_type: {"schema": schemas.ref(doc.body, "validation")}},
        }
    operation["responses"] = {
        **{str(s): _answer(s, answer, schemas) for s, answer in sorted(doc.answers.items())},
        **{str(s): _error(s, schemas) for s in _error_statuses(route)},
    }
    return operation


def openapi(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every documented route of `app`."""
    routes = _routes(app)
    schemas = _Schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard",
            "version": __version__,
            "description": "Message-queue based event broker for chatbot channels.",
        },
        "paths": paths,
        "components": {"schemas": schemas.components, "securitySchemes": _SECURITY_SCHEMES},
    }
