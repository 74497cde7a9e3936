"""Serving the Flask app with gunicorn, from inside the `switchboard web` command.

Two things gunicorn would do otherwise: answer a request it cannot parse (bad chunking,
control characters in a header) with an HTML page, where every refusal of ours is a JSON
error (docs/wire-contract.md §1c); and drop the app's `Connection: close`, which the app
sends when it refused a body it did not read, leaving that body to be taken for the next
request on the connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.http import errors as http_errors
from gunicorn.util import write_nonblock
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from broker.core.connection import connect
from broker.core.settings import Settings
from web import Services, check_settings, create_app

#: Malformed requests that are not a plain 400: status, reason, error code.
_STATUSES: dict[type[Exception], tuple[int, str, str]] = {
    http_errors.LimitRequestLine: (414, "URI Too Long", "uri_too_long"),
    http_errors.LimitRequestHeaders: (431, "Request Header Fields Too Large", "headers_too_large"),
    http_errors.ExpectationFailed: (417, "Expectation Failed", "expectation_failed"),
    http_errors.ForbiddenProxyRequest: (403, "Forbidden", "forbidden"),
}


def _error_answer(exc: BaseException) -> tuple[int, str, str, str]:
    """Status, reason, code and message for an error gunicorn met outside the app."""
    if isinstance(exc, http_errors.ParseException | http_errors.NoMoreData):
        for kind, (status, reason, code) in _STATUSES.items():
            if isinstance(exc, kind):
                return status, reason, code, f"the request is malformed: {exc}"
        return 400, "Bad Request", "bad_request", f"the request is malformed: {exc}"
    return 500, "Internal Server Error", "internal_error", "an internal error occurred"


class _JsonErrors:
    """A gunicorn worker whose own error answers are JSON errors, like the app's."""

    log: Any

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        status, reason, code, message = _error_answer(exc)
        if status >= 500:
            self.log.exception("Error handling request")
        else:
            self.log.info("Invalid request from %s: %s", (addr or ("",))[0], exc)
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            write_nonblock(client, head.encode("latin-1") + body)
        except Exception:  # the client may be gone; there is no one left to tell
            self.log.debug("Failed to send error message.")


class JsonErrorsThreadWorker(_JsonErrors, ThreadWorker):  # type: ignore[misc]
    pass


class JsonErrorsSyncWorker(_JsonErrors, SyncWorker):  # type: ignore[misc]
    pass


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def honour_connection_close(app: WsgiApp) -> WsgiApp:
    """Close the connection after an answer that says `Connection: close`: gunicorn drops that
    header from an app's answer, but its start_response belongs to a response it can close."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            closing = any(
                name.lower() == "connection" and value.lower() == "close" for name, value in headers
            )
            force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
            if closing and callable(force_close):
                force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any], settings: Settings) -> None:
        self.options = options
        self.settings_ = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Each gunicorn worker process makes its own connections, after the fork.
        from workers.celery_app import CelerySender, make_celery

        settings = self.settings_
        redis = connect(settings.redis_url, sentinel_master=settings.sentinel_master)
        sender = CelerySender(make_celery(settings), redis)
        return honour_connection_close(create_app(Services(settings, redis, sender)))


def serve(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    check_settings(settings)
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": JsonErrorsThreadWorker if threads > 1 else JsonErrorsSyncWorker,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "timeout": 30,
        "keepalive": 5,
    }
    _Gunicorn(options, settings).run()
