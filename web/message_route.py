"""The message routes answered by `switchboard web` itself, on its event loop, without Flask:
the same steps (`web/message_intake.py`), the same answers and errors, the same counts.
Flask's request and answer objects, its routing and its hooks cost about twice what taking
a message in does (docs/architecture.md, "The web server"), and these routes carry nearly
all the traffic. Any request they do not take goes to the Flask app."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from web import message_intake
from web.client_address import client_of
from web.errors import error_answer
from web.inbound_counts import InboundCount
from web.message_intake import EVENT_RECEIVED, MessagePost
from web.redis_gate import refusal
from web.services import Services

_CURRENT = re.compile(r"/v1/channels/webhook/([^/]+)/messages")
_LEGACY = re.compile(r"/api/webhookMessage/([^/]+)")


#: Status, headers, body.
Answer = tuple[int, list[tuple[str, str]], bytes]

#: As Flask writes a text answer's type.
_PLAIN_TEXT = "text/plain; charset=utf-8"


def answer(
    s: Services, method: str, path: str, headers: Mapping[str, str], body: bytes, client: str
) -> Answer | None:
    """The answer to a message sent to the current (§1a) or the legacy (§1b) message route;
    None for any other request. `path` is decoded; `headers` are named as in a WSGI
    environment."""
    if method != "POST":
        return None
    legacy = _LEGACY.fullmatch(path)
    route = legacy or _CURRENT.fullmatch(path)
    if route is None:
        return None
    post = MessagePost(
        route_id=route[1],
        authorization=headers.get("HTTP_AUTHORIZATION", ""),
        content_type=headers.get("CONTENT_TYPE"),
        idempotency_key=headers.get("HTTP_IDEMPOTENCY_KEY"),
        client=client_of(
            client or "unknown", headers.get("HTTP_X_FORWARDED_FOR"), s.settings.trusted_proxies
        ),
        body=lambda: body,
    )
    count = InboundCount()
    if s.redis_gate.admits():
        answered = _taken(s, post, count, legacy=legacy is not None)
    else:
        answered = _refused(refusal())
    count.answered(answered[0], per_channel=s.settings.metrics_per_channel)
    return answered


def _taken(s: Services, post: MessagePost, count: InboundCount, *, legacy: bool) -> Answer:
    """The message taken in, or the error answer; the gate is told how it went."""
    error: Exception | None = None
    try:
        if legacy:
            message_intake.take_legacy(s, post, count)
            answered: Answer = 200, [("Content-Type", _PLAIN_TEXT)], EVENT_RECEIVED.encode()
        else:
            answered = _json(202, message_intake.queued(message_intake.take(s, post, count)))
    except Exception as exc:
        error = exc
        answered = _refused(exc)
    s.redis_gate.settle(error)
    return answered


def _refused(exc: Exception) -> Answer:
    refused = error_answer(exc)
    return _json(refused.status, refused.document, list(refused.headers.items()))


def _json(status: int, document: Any, headers: list[tuple[str, str]] | None = None) -> Answer:
    # As Flask's `jsonify` writes it.
    text = json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n"
    return status, [("Content-Type", "application/json"), *(headers or [])], text.encode()
