"""HTTP/1.1 for the web process: connections read on an event loop, requests parsed in C
(llhttp, through httptools), and the WSGI app called inline on the loop for the routes the
site names (`Site.inline`), on a thread pool for the rest.

Why not a thread per request: it costs two thread wake-ups and a pass of the server's own
loop for each request, which at light load cost more than the route itself (see
docs/architecture.md, "The web server"). Inline, a request costs one read, one call of the
app and one write. Slow clients do not hold a process: a request reaches the app only once
its whole body is in memory, and answers are written without waiting for the client.

Every refusal of the server's own is a JSON error, as the app's are
(docs/wire-contract.md §1c): a malformed request line, header or chunked body, or a path
that is not UTF-8 (400), a request line too long (414), too many headers or one too long
(431), a body over the limit (413), an unknown `Expect` (417), a request that does not
arrive in time (408).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote_to_bytes

import httptools

from broker.core.defaults import UNAVAILABLE_RETRY_AFTER

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_KEEP_ALIVE = b"Connection: keep-alive\r\n\r\n"
_CLOSE = b"Connection: close\r\n\r\n"
_NO_BODY_STATUSES = (204, 304)


@dataclass(frozen=True)
class Limits:
    """What a request may be; past these it is refused, as gunicorn's defaults would."""

    body_bytes: int
    request_line_bytes: int = 4094
    header_fields: int = 100
    header_field_bytes: int = 8190
    #: An idle kept-alive connection is closed after this many seconds: longer than the
    #: `Retry-After` of a 503, so that a client that waits as told and sends again on its
    #: kept-alive connection does not meet the close halfway.
    keepalive_seconds: float = 3.0 * UNAVAILABLE_RETRY_AFTER
    #: A request that stops arriving for this long, or that has not arrived whole after
    #: `request_seconds`, is answered 408 and its connection closed (a client trickling a
    #: byte now and then would otherwise hold its connection for ever).
    read_timeout_seconds: float = 30.0
    request_seconds: float = 60.0


@dataclass(frozen=True)
class Incoming:
    """A request, for a `Site.direct` answer."""

    method: str
    #: Decoded from its percent-escapes and UTF-8 (a path that is not UTF-8 is refused first).
    path: str
    #: Named as in a WSGI environment (`HTTP_AUTHORIZATION`, `CONTENT_TYPE`), repeated
    #: fields joined with commas.
    headers: dict[str, str]
    body: bytes
    remote_addr: str


#: A `Site.direct` answer: status, headers, body.
Outgoing = tuple[int, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class Site:
    """What every connection of a web process shares."""

    app: WsgiApp
    limits: Limits
    #: Whether a request (method, path) is answered on the event loop; the others are
    #: answered on a thread of `pool`, so that a slow one never holds the loop.
    inline: Callable[[str, bytes], bool]
    pool: Executor
    server_name: str
    server_port: str
    #: Answers some of the requests answered on the loop without the WSGI app, for speed;
    #: None leaves a request to the app.
    direct: Callable[[Incoming], Outgoing | None] | None = None


class ErrorAnswer(Exception):
    """A JSON error the server answers itself, closing the connection after it."""

    def __init__(
        self, status: int, reason: str, code: str, message: str, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.code, self.message = status, reason, code, message
        self.retry_after = retry_after

    def answer(self) -> bytes:
        """The JSON error, on a connection that closes after it."""
        body = json.dumps({"error": {"code": self.code, "message": self.message}}).encode()
        retry = "" if self.retry_after is None else f"Retry-After: {self.retry_after}\r\n"
        return (
            f"HTTP/1.1 {self.status} {self.reason}\r\nConnection: close\r\n{retry}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body


_INTERNAL_ERROR = ErrorAnswer(
    500, "Internal Server Error", "internal_error", "an internal error occurred; it was logged"
)


def _malformed(message: str) -> ErrorAnswer:
    return ErrorAnswer(400, "Bad Request", "bad_request", f"the request is malformed: {message}")


class _Date:
    """The Date header's value, formatted once a second."""

    second = -1
    text = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.text = second, formatdate(second, usegmt=True).encode()
        return cls.text


@dataclass
class _Request:
    method: str
    target: bytes
    version: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.limits = site.limits
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.remote: tuple[str, str] = ("", "")
        self.ready: deque[_Request] = deque()
        self.writing_paused = False
        #: A request of this connection is being answered on a thread of the pool.
        self.busy = False
        #: The client sent end-of-file: nothing more will come.
        self.peer_done = False
        #: A request the server refused itself: answered, and the connection closed, once
        #: every request before it is.
        self.refusal: ErrorAnswer | None = None
        self.closing = False
        #: When the server began to close the connection (monotonic seconds), and whether it
        #: is closed: one closing still holds its socket until its answers are written.
        self.closing_since = 0.0
        self.lost = False
        #: When the connection was made or last read from (monotonic seconds), and whether a
        #: request is part-way in: what the worker's sweep of idle and stalled connections
        #: looks at.
        self.last_active = time.monotonic()
        self.in_request = False
        self.request_started = 0.0
        self._reset()

    def _reset(self) -> None:
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_bytes = 0

    @property
    def idle(self) -> bool:
        """Kept alive between requests: nothing asked, nothing to answer."""
        return (
            self.transport is not None
            and not (self.closing or self.busy or self.in_request or self.writing_paused)
            and not self.ready
            and self.refusal is None
        )

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.remote = (str(peer[0]), str(peer[1]))
        self.last_active = time.monotonic()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.lost = True
        self.ready.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing or self.refusal is not None:
            return
        self.last_active = time.monotonic()
        try:
            self._feed(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._refuse(cause if isinstance(cause, ErrorAnswer) else _malformed(str(exc)))
            return
        except httptools.HttpParserError as exc:
            self._refuse(_malformed(str(exc) or type(exc).__name__))
            return
        self._answer_ready()

    def _feed(self, data: bytes) -> None:
        while True:
            try:
                self.parser.feed_data(data)
                return
            except httptools.HttpParserUpgrade as upgrade:
                request = self.ready[-1] if self.ready else None
                if request is None or request.method == "CONNECT":
                    # Not taken: what was asked is answered, then the connection closed.
                    for asked in self.ready:
                        asked.keep_alive = False
                    return
                # An upgrade asked for (h2c, a WebSocket) is not taken, and a server may
                # ignore it (RFC 9110 §7.8); the parser ended the request at its headers, so
                # it is parsed again without the upgrade, and its body read.
                self.ready.pop()
                self.parser = httptools.HttpRequestParser(self)
                data = _without_upgrade(request) + data[upgrade.args[0] :]

    def eof_received(self) -> bool:
        """The client will send no more: answer what it asked, then close."""
        self.peer_done = True
        if self.in_request:
            self._refuse(_malformed("the request ended before its body did"))
        elif not self.ready and not self.busy:
            return False
        return True  # keep the connection half-open to write the answers

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.last_active = time.monotonic()
        self._answer_ready()

    # parser callbacks

    def on_message_begin(self) -> None:
        self.in_request = True
        self.request_started = time.monotonic()
        self._reset()

    def on_url(self, url: bytes) -> None:
        self.target += url
        if len(self.target) > self.limits.request_line_bytes:
            raise ErrorAnswer(414, "URI Too Long", "uri_too_long", "the request line is too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        if len(self.headers) > self.limits.header_fields:
            raise ErrorAnswer(
                431, "Request Header Fields Too Large", "headers_too_large", "too many headers"
            )
        if len(name) + len(value) > self.limits.header_field_bytes:
            raise ErrorAnswer(
                431, "Request Header Fields Too Large", "headers_too_large", "a header is too long"
            )

    def on_headers_complete(self) -> None:
        version = self.parser.get_http_version()
        if version not in ("1.0", "1.1"):
            # The parser lets HTTP/2.0 and 0.9 request lines through; the others it refuses
            # as malformed, and so do we (a 505 would count a client's mistake as ours).
            raise _malformed(f"HTTP/{version} is not spoken here, only HTTP/1.1 and 1.0")
        if b"%" in self.target and not _utf8_path(self.target):
            raise _malformed("its path is not valid UTF-8 once its %-escapes are decoded")
        length = self._header(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limits.body_bytes:
            raise self._too_large()
        coding = self._header(b"content-encoding")
        if coding is not None and coding.strip().lower() not in (b"", b"identity"):
            raise ErrorAnswer(
                415,
                "Unsupported Media Type",
                "unsupported_media_type",
                f"the body's content coding {_shown(coding)} is not taken: send it as it is",
            )
        transfer = self._header(b"transfer-encoding")
        if transfer is not None and transfer.strip().lower() != b"chunked":
            # The parser reads the chunks; any other coding (gzip, ...) would reach the app
            # still coded.
            raise _malformed(f"the transfer coding {_shown(transfer)} is not taken, only chunked")
        expect = self._header(b"expect")
        if expect is not None:
            if expect.strip().lower() != b"100-continue":
                raise ErrorAnswer(
                    417,
                    "Expectation Failed",
                    "expectation_failed",
                    "the only expectation taken is '100-continue'",
                )
            if self.transport is not None and self.parser.get_http_version() == "1.1":
                self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > self.limits.body_bytes:
            raise self._too_large()
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_request = False
        self.ready.append(
            _Request(
                method=self.parser.get_method().decode("latin-1"),
                target=self.target,
                version=self.parser.get_http_version(),
                headers=self.headers,
                body=b"".join(self.body),
                keep_alive=self.parser.should_keep_alive(),
            )
        )
        self._reset()

    # answering

    def _too_large(self) -> ErrorAnswer:
        return ErrorAnswer(
            413,
            "Request Entity Too Large",
            "body_too_large",
            f"the request body is larger than the limit of {self.limits.body_bytes} bytes",
        )

    def _header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def _answer_ready(self) -> None:
        """Answer the requests read so far, in order, while the client takes the answers."""
        while self.ready and not self.writing_paused and not self.closing and not self.busy:
            request = self.ready.popleft()
            if self.site.inline(request.method, request.target):
                self._send(*self._answer_inline(request))
                continue
            self.busy = True
            future = asyncio.get_running_loop().run_in_executor(
                self.site.pool, self._call_app, request
            )
            future.add_done_callback(self._sent_from_pool)
        if self.transport is None or self.closing:
            return
        if self.refusal is not None:
            if not self.ready and not self.busy and not self.writing_paused:
                self.transport.write(self.refusal.answer())
                self._close()
            return
        # While answers wait, read no further: a client that sends and never reads would
        # otherwise fill this process's memory with requests.
        if self.ready:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _sent_from_pool(self, future: asyncio.Future[tuple[bytes, bool]]) -> None:
        self.busy = False
        if not self.closing:
            self._send(*future.result())
            self._answer_ready()

    def _send(self, answer: bytes, keep_alive: bool) -> None:
        assert self.transport is not None
        self.transport.write(answer)
        if not keep_alive or (self.peer_done and not self.ready):
            self._close()

    def _refuse(self, refusal: ErrorAnswer) -> None:
        """Answer `refusal` after the requests read before it (one may be on the pool), then
        close: nothing after it is read."""
        if refusal.status >= 500:
            log.error("refused a request: %s", refusal.message)
        else:
            log.info("refused a request from %s: %s", self.remote[0], refusal.message)
        self.refusal = self.refusal or refusal
        if self.transport is not None and not self.closing:
            self.transport.pause_reading()
        self._answer_ready()

    def close_when_idle(self) -> None:
        """Close a connection between requests (kept alive too long, or shutting down), or
        one whose client stopped taking its answers: that one is reset, since a close waits
        for the answers to be written, for ever if the client never reads them."""
        self._begin_closing()
        if self.transport is None:
            return
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        else:
            self.transport.close()

    def abort_unwritten(self, limits: Limits) -> None:
        """Reset a closing connection whose answers its client has not taken in the time
        `limits` give it to read."""
        if (
            self.transport is not None
            and self.transport.get_write_buffer_size()
            and time.monotonic() - self.closing_since > limits.read_timeout_seconds
        ):
            self.transport.abort()

    def _begin_closing(self) -> None:
        if not self.closing:
            self.closing, self.closing_since = True, time.monotonic()

    def refuse_stalled(self) -> None:
        self._refuse(
            ErrorAnswer(
                408, "Request Timeout", "request_timeout", "the request did not arrive in time"
            )
        )

    def _close(self) -> None:
        """Close once the answer is written; the client may still be sending a body that was
        refused, so what it sends meanwhile is read and dropped rather than met with a reset."""
        self._begin_closing()
        self.ready.clear()
        if self.transport is not None:
            self.transport.resume_reading()  # to drop what comes, not leave it to a reset
            if self.transport.can_write_eof():
                self.transport.write_eof()
            asyncio.get_running_loop().call_later(2.0, self.transport.close)

    def _answer_inline(self, request: _Request) -> tuple[bytes, bool]:
        if self.site.direct is None or not request.target.startswith(b"/"):
            return self._call_app(request)
        path = request.target.partition(b"?")[0].partition(b"#")[0]
        fields = _header_fields(request.headers)
        incoming = Incoming(
            method=request.method,
            path=unquote_to_bytes(path).decode("utf-8", "replace"),
            headers=fields,
            body=request.body,
            remote_addr=self.remote[0],
        )
        try:
            answer = self.site.direct(incoming)
        except Exception:
            log.exception("failed to answer %s %r", request.method, request.target[:200])
            return _INTERNAL_ERROR.answer(), False
        if answer is None:
            return self._call_app(request, fields)
        status, headers, body = answer
        return self._answer(request, status_line(status), headers, body)

    def _call_app(
        self, request: _Request, fields: dict[str, str] | None = None
    ) -> tuple[bytes, bool]:
        """The WSGI app's answer; `fields`: the request's headers, if already named as WSGI
        names them."""
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> None:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]

        try:
            environ = self._environ(request, fields)
        except ErrorAnswer as refused:
            return refused.answer(), False
        try:
            result = self.site.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            return self._answer(request, started[0], started[1], body)
        except Exception:
            log.exception("the app failed to answer %s %r", request.method, request.target[:200])
            return _INTERNAL_ERROR.answer(), False

    def _answer(
        self, request: _Request, status: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[bytes, bool]:
        """The answer's bytes, and whether the connection stays open after it."""
        keep_alive = request.keep_alive
        lines = [f"HTTP/1.1 {status}\r\n".encode("latin-1")]
        has_length = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == "connection":
                keep_alive = keep_alive and value.lower() != "close"
                continue
            has_length = has_length or lowered == "content-length"
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        code = int(status[:3])
        with_body = request.method != "HEAD" and code not in _NO_BODY_STATUSES and code >= 200
        if with_body and not has_length:
            lines.append(b"Content-Length: %d\r\n" % len(body))
        lines.append(b"Date: " + _Date.now() + b"\r\n")
        lines.append(_KEEP_ALIVE if keep_alive else _CLOSE)
        return b"".join(lines) + (body if with_body else b""), keep_alive

    def _environ(self, request: _Request, fields: dict[str, str] | None) -> dict[str, Any]:
        target = request.target
        if target.startswith(b"/"):
            path, _, query = target.partition(b"?")
            path = path.partition(b"#")[0]
            query = query.partition(b"#")[0]
        elif target == b"*":
            path, query = b"*", b""
        else:
            try:
                url = httptools.parse_url(target)
            except httptools.HttpParserInvalidURLError:
                raise _malformed("the request target is not a URL") from None
            path, query = url.path or b"/", url.query or b""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "RAW_URI": target.decode("latin-1"),
            "SERVER_NAME": self.site.server_name,
            "SERVER_PORT": self.site.server_port,
            "SERVER_PROTOCOL": f"HTTP/{request.version}",
            "REMOTE_ADDR": self.remote[0],
            "REMOTE_PORT": self.remote[1],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(request.body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        environ.update(_header_fields(request.headers) if fields is None else fields)
        return environ


def _utf8_path(target: bytes) -> bool:
    """Whether the path of a request target is UTF-8 once its %-escapes are decoded: Werkzeug
    would put U+FFFD for what is not, so that `/conversations/%ff` named another conversation.
    (The parser refuses bytes other than ASCII, so a target without `%` needs no look.)"""
    try:
        unquote_to_bytes(target.partition(b"?")[0]).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _shown(value: bytes) -> str:
    """A header's value, quoted for an error message."""
    return repr(value.decode("latin-1")[:100])


def _without_upgrade(request: _Request) -> bytes:
    """The head of `request` without what asks for an upgrade (`Upgrade`, `Connection`, but a
    `close` it held), nor an `Expect` already answered."""
    head = [
        b"%s %s HTTP/%s\r\n" % (request.method.encode(), request.target, request.version.encode())
    ]
    for name, value in request.headers:
        lowered = name.lower()
        if lowered == b"connection":
            if b"close" in (token.strip().lower() for token in value.split(b",")):
                head.append(b"Connection: close\r\n")
        elif lowered not in (b"upgrade", b"expect"):
            head.append(b"%s: %s\r\n" % (name, value))
    head.append(b"\r\n")
    return b"".join(head)


def status_line(status: int) -> str:
    """`202 ACCEPTED`: a status as a WSGI app (werkzeug) writes it."""
    return f"{status} {HTTPStatus(status).phrase.upper()}"


def _header_fields(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers as a WSGI environment names them: `CONTENT_TYPE`, `CONTENT_LENGTH`, and
    `HTTP_` and the name for the others, repeated fields joined with commas."""
    fields: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").upper()
        if "_" in name:
            continue  # a name with "_" could pass for one with "-" (gunicorn drops them too)
        value = raw_value.decode("latin-1")
        if name in ("CONTENT-TYPE", "CONTENT-LENGTH"):
            fields[name.replace("-", "_")] = value
            continue
        key = "HTTP_" + name.replace("-", "_")
        fields[key] = f"{fields[key]},{value}" if key in fields else value
    return fields


def sweep(connections: set[HttpProtocol], limits: Limits) -> None:
    """Forget closed connections; close idle kept-alive ones, refuse stalled requests, and
    reset connections whose clients do not read their answers."""
    now = time.monotonic()
    for protocol in list(connections):
        quiet = now - protocol.last_active
        if protocol.transport is None:
            # Made, and connected on the loop's next turn; one that never was is forgotten.
            if quiet > limits.keepalive_seconds:
                connections.discard(protocol)
        elif protocol.lost:
            connections.discard(protocol)
        elif protocol.closing or protocol.transport.is_closing():
            # Kept until closed for good: a socket waiting for its client to read the last
            # answers is still an open connection.
            protocol.abort_unwritten(limits)
        elif protocol.busy:
            continue
        elif protocol.writing_paused or protocol.ready:
            if quiet > limits.read_timeout_seconds:  # a client that stopped reading answers
                protocol.close_when_idle()
        elif not protocol.in_request and quiet > limits.keepalive_seconds:
            protocol.close_when_idle()
        elif protocol.in_request and (
            quiet > limits.read_timeout_seconds
            or now - protocol.request_started > limits.request_seconds
        ):
            protocol.refuse_stalled()
