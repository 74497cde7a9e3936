"""Customer endpoints for tests: real local HTTP servers that fail on purpose.

A `Receiver` records every request and answers what its `behaviour` says. The
behaviour is a function of the request (with the number of the try for that
webhook-id), so a test says exactly how the endpoint misbehaves.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from tests.polling import wait_until


@dataclass
class Hit:
    """One request that reached the receiver."""

    path: str
    headers: dict[str, str]
    raw: bytes
    at: float
    try_number: int
    status: int
    method: str = "POST"

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.raw)
        return body

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Seconds to wait before answering.
    delay: float = 0.0


Behaviour = Callable[[Hit], Answer]


class ReceiverFactory(Protocol):
    """The `make_receiver` fixture: a new receiver with the behaviour given (200 otherwise)."""

    def __call__(self, behaviour: Behaviour | None = None) -> Receiver: ...


def always(status: int = 200, **kwargs: Any) -> Behaviour:
    return lambda hit: Answer(status, **kwargs)


class _Server(ThreadingHTTPServer):
    # Connections beyond a full accept queue wait for a SYN retry (1 s, then 3 s): a burst
    # of a worker's new connections on a busy machine would time out, open the endpoint's
    # circuit and fail deliveries that the test means to succeed.
    request_queue_size = 128


class Receiver:
    def __init__(self, behaviour: Behaviour | None = None, port: int = 0) -> None:
        self.behaviour = behaviour or always(200)
        self.hits: list[Hit] = []
        self._tries: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                receiver._handle(self)

            def do_GET(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        if len(raw) < length:
            return  # the sender went away mid-request (a worker killed): nothing arrived
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            webhook_id = headers.get("webhook-id", "")
            self._tries[webhook_id] = self._tries.get(webhook_id, 0) + 1
            hit = Hit(
                request.path,
                headers,
                raw,
                time.time(),
                self._tries[webhook_id],
                0,
                request.command,
            )
        answer = self.behaviour(hit)
        if answer.delay:
            self._stopping.wait(answer.delay)
        hit.status = answer.status
        with self._lock:
            self.hits.append(hit)
        try:
            request.send_response(answer.status)
            for name, value in answer.headers.items():
                request.send_header(name, value)
            request.send_header("Content-Length", str(len(answer.body)))
            request.end_headers()
            request.wfile.write(answer.body)
        except OSError:
            pass  # the broker gave up waiting

    @property
    def arrived(self) -> int:
        """Requests that came in, answered yet or not."""
        with self._lock:
            return sum(self._tries.values())

    def delivered(self) -> list[Hit]:
        """Requests answered 2xx, in arrival order."""
        with self._lock:
            return [hit for hit in self.hits if 200 <= hit.status < 300]

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()


def wait_delivered(receiver: Receiver, count: int, what: str = "") -> list[Hit]:
    """Wait until exactly `count` requests were answered 2xx; they, in arrival order."""

    def arrived() -> list[Hit]:
        delivered = receiver.delivered()
        return delivered if len(delivered) == count else []

    return wait_until(arrived, what=what or f"{count} deliveries")


def texts(hits: list[Hit]) -> list[str]:
    """The text of each reply, in order."""
    return [hit.body["message"]["text"] for hit in hits]


def of_conversation(hits: list[Hit], conversation: str) -> list[Hit]:
    return [hit for hit in hits if hit.body["sessionId"] == conversation]


def closed_url() -> str:
    """The URL of a receiver already stopped: a port where nothing listens any more."""
    gone = Receiver()
    gone.stop()
    return gone.url
