"""The Webhook message route answered by `switchboard web` itself, on its event loop, without
Flask: the same steps (`web/message_intake.py`), the same answers and errors, the same
counts. Flask's request and answer objects, its routing and its hooks cost about twice
what taking the message in does (docs/architecture.md, "The web server"), and this route
carries nearly all the traffic. Any request it does not take goes to the Flask app."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from web import message_intake
from web.errors import error_answer
from web.inbound_counts import InboundCount
from web.message_intake import MessagePost
from web.services import Services

_PATH = re.compile(r"/v1/channels/webhook/([^/]+)/messages")


#: Status, headers, body.
Answer = tuple[int, list[tuple[str, str]], bytes]


def answer(
    s: Services, method: str, path: str, headers: Mapping[str, str], body: bytes, client: str
) -> Answer | None:
    """The answer to a message sent to the Webhook message route; None for any other
    request. `path` is decoded; `headers` are named as in a WSGI environment."""
    route = _PATH.fullmatch(path) if method == "POST" else None
    if route is None:
        return None
    post = MessagePost(
        channel_id=route[1],
        authorization=headers.get("HTTP_AUTHORIZATION", ""),
        content_type=headers.get("CONTENT_TYPE"),
        idempotency_key=headers.get("HTTP_IDEMPOTENCY_KEY"),
        client=client or "unknown",
        body=lambda: body,
    )
    count = InboundCount()
    try:
        accepted = message_intake.take(s, post, count)
    except Exception as exc:
        refused = error_answer(exc)
        count.answered(refused.status)
        return _json(refused.status, refused.document, list(refused.headers.items()))
    count.answered(202)
    return _json(202, message_intake.queued(accepted))


def _json(status: int, document: Any, headers: list[tuple[str, str]] | None = None) -> Answer:
    # As Flask's `jsonify` writes it.
    text = json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n"
    return status, [("Content-Type", "application/json"), *(headers or [])], text.encode()
