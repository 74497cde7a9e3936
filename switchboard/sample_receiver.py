"""A customer webhook endpoint for the demo: verifies signatures, and can fail on purpose."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from broker.delivery import signing


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]
    signature_ok: bool
    attempt: int


@dataclass
class SampleReceiver:
    """Answers 200, except a 503 to the first try of each webhook-id in `fail_once`."""

    secret: str = ""
    fail_once: set[int] = field(default_factory=set)
    on_delivery: Callable[[Received], None] | None = None
    received: list[Received] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> int:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status = receiver.handle(raw, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()

    def handle(self, raw: bytes, headers: dict[str, str]) -> int:
        webhook_id = headers.get("webhook-id", "")
        body = json.loads(raw)
        with self._lock:
            attempt = self.tries[webhook_id] = self.tries.get(webhook_id, 0) + 1
            if body.get("messageCounter") in self.fail_once and attempt == 1:
                return 503
            ok = signing.verify(
                self.secret,
                webhook_id,
                int(headers.get("webhook-timestamp", "0")),
                raw,
                headers.get("webhook-signature", ""),
            )
            item = Received(webhook_id, body, ok, attempt)
            self.received.append(item)
        if self.on_delivery:
            self.on_delivery(item)
        return 200
