"""Raw HTTP/1.1 over a socket, for requests no HTTP library would send: bad chunking, control
characters and non-ASCII bytes in headers, invalid UTF-8, bodies shorter than they say."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def is_json_error(self) -> bool:
        """The API's error shape: `{"error": {"code", "message", "field"?, "errors"?}}`,
        as JSON, `errors` listing every problem of a validation as `{"field", "message"}`."""
        if not self.headers.get("content-type", "").startswith("application/json"):
            return False
        try:
            error = self.json()["error"]
        except (ValueError, KeyError, TypeError):
            return False
        return (
            isinstance(error, dict)
            and isinstance(error.get("code"), str)
            and isinstance(error.get("message"), str)
            and set(error) <= {"code", "message", "field", "errors"}
            and all(
                isinstance(each, dict) and set(each) == {"field", "message"}
                for each in error.get("errors", [])
            )
        )


def request(
    port: int,
    head: bytes,
    body: bytes = b"",
    *,
    timeout: float = 10.0,
    half_close: bool = False,
) -> Reply | None:
    """Send `head` (request line and headers, without the blank line) and `body` on a new
    connection, then read one answer; None when the server closed without answering.
    `half_close` ends the client's side after sending, for bodies shorter than they say."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(head + b"\r\n\r\n" + body)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer (and close) before taking the whole body
        return read_reply(sock)


def read_reply(sock: socket.socket) -> Reply | None:
    """One HTTP answer from `sock`, past any interim (1xx) one: by its Content-Length, else to
    the end of the stream."""
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            chunk = _recv(sock)
            if not chunk:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if not head.split(b" ", 2)[1].startswith(b"1"):
            break
        data = rest
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length is not None:
        while len(rest) < int(length):
            chunk = _recv(sock)
            if not chunk:
                break
            rest += chunk
        return Reply(status, headers, rest[: int(length)])
    while chunk := _recv(sock):
        rest += chunk
    return Reply(status, headers, rest)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""
