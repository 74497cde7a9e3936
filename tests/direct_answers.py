"""The web server's own answers (`switchboard.web_server.answered_directly`) in front of the
Flask app for the in-process tests' client: what `switchboard web` answers without Flask is
answered here too, so that the same tests check both ways of serving a request."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from switchboard.http_protocol import Incoming, status_line
from switchboard.web_server import answered_directly
from web.services import Services

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DirectFirst:
    """A WSGI app: the server's own answer when it has one, else `app`'s. As the server, it
    leaves a body over the limit to `app` (the server refuses it before any answer)."""

    def __init__(self, app: WsgiApp, services: Services) -> None:
        self.app = app
        self.direct = answered_directly(services)
        self.body_limit = services.settings.max_body_bytes

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        if len(body) > self.body_limit:
            return self.app(environ, start_response)
        incoming = Incoming(
            method=environ["REQUEST_METHOD"],
            path=environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace"),
            headers={
                name: value
                for name, value in environ.items()
                if name.startswith("HTTP_") or name in ("CONTENT_TYPE", "CONTENT_LENGTH")
            },
            body=body,
            remote_addr=environ.get("REMOTE_ADDR", ""),
        )
        answer = self.direct(incoming)
        if answer is None:
            return self.app(environ, start_response)
        status, headers, content = answer
        start_response(status_line(status), headers)
        return [content]
