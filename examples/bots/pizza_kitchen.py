"""The pizza bot's kitchen: a local stand-in for the API that takes orders.

    python examples/bots/pizza_kitchen.py [--port 8077]

`POST /orders` with `{"pizza", "size", "count", "phone"}` answers `201 {"id", "eta"}`; an
order without a pizza or a size answers `422`. Standard library only.
"""

from __future__ import annotations

import argparse
import itertools
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_NUMBERS = itertools.count(1)


def answer(order: Any) -> tuple[int, dict[str, Any]]:
    """What the kitchen says to an order."""
    if not isinstance(order, dict) or not order.get("pizza") or not order.get("size"):
        return 422, {"error": "an order names a pizza and a size"}
    count = order.get("count") or 1
    eta = 20 + 5 * (int(count) // 4) if isinstance(count, int) else 20
    return 201, {"id": f"K{next(_NUMBERS):04d}", "eta": eta}


class Kitchen(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            order = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            order = None
        status, body = answer(order) if self.path == "/orders" else (404, {"error": "no route"})
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        print(f"{self.path} {json.dumps(order)} -> {status} {json.dumps(body)}", flush=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8077)
    port = parser.parse_args().port
    print(f"the kitchen takes orders on http://127.0.0.1:{port}/orders", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Kitchen).serve_forever()


if __name__ == "__main__":
    main()
