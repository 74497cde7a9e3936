"""The web process's HTTP/1.1 server, serving a small WSGI app on a loopback port: keep-alive,
pipelining, order per connection, chunked bodies and limits, `Expect`, and its own refusals,
each a JSON error."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from switchboard.http_protocol import HttpProtocol, Incoming, Limits, Outgoing, Site, sweep
from tests.integration.raw_http import Reply, read_reply, request
from tests.loop_server import LoopServer
from tests.polling import wait_until

#: The state of a TCP socket reset by its peer (linux/tcp_states.h).
_TCP_CLOSE = 7

LIMITS = Limits(
    body_bytes=1000, keepalive_seconds=0.3, read_timeout_seconds=0.3, request_seconds=0.8
)


class App:
    """Answers with what it was asked; `/slow` waits for `release`; `/boom` fails."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/boom":
            raise RuntimeError("boom")
        if path == "/slow":
            self.release.wait(10)
        seen = {
            "method": environ["REQUEST_METHOD"],
            "path": path,
            "query": environ["QUERY_STRING"],
            "body": environ["wsgi.input"].read().decode("latin-1"),
            "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        }
        headers = [("Content-Type", "application/json")]
        if path == "/close":
            headers.append(("Connection", "close"))
        start_response("200 OK", headers)
        return [json.dumps(seen).encode()]


def _inline(method: str, target: bytes) -> bool:
    return not target.startswith(b"/slow")


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def server(app: App) -> Iterator[LoopServer]:
    running = LoopServer(app, LIMITS, _inline)
    yield running
    app.release.set()
    running.stop()


def _connect(server: LoopServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def _get(path: str, extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + extra + b"\r\n"


def _replies(sock: socket.socket, count: int) -> list[dict[str, Any]]:
    """The JSON bodies of the next `count` answers on `sock`, pipelined or not."""
    data, bodies = b"", list[dict[str, Any]]()
    while len(bodies) < count:
        head, found, rest = data.partition(b"\r\n\r\n")
        length = next(
            (int(line[15:]) for line in head.split(b"\r\n") if line.startswith(b"Content-Length:")),
            None,
        )
        if found and length is not None and len(rest) >= length:
            bodies.append(json.loads(rest[:length]))
            data = rest[length:]
        else:
            data += sock.recv(65536)
    return bodies


def _refused(reply: Reply | None, status: int, code: str) -> None:
    assert reply is not None and reply.status == status, reply
    assert reply.is_json_error() and reply.json()["error"]["code"] == code, reply
    assert reply.headers["connection"] == "close"


def test_a_kept_alive_connection_answers_pipelined_requests_in_order(server: LoopServer) -> None:
    with _connect(server) as sock:
        sock.sendall(_get("/a?x=1") + _get("/b"))
        first, second = _replies(sock, 2)
        assert (first["path"], first["query"], second["path"]) == ("/a", "x=1", "/b")
        sock.sendall(_get("/c"))
        third = read_reply(sock)
        assert third is not None and third.json()["path"] == "/c"
        assert third.headers["connection"] == "keep-alive"


def test_a_long_pipeline_is_answered_whole_and_in_order(server: LoopServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"".join(_get(f"/n{n}") for n in range(500)))
        assert [seen["path"] for seen in _replies(sock, 500)] == [f"/n{n}" for n in range(500)]


def test_a_request_on_the_pool_holds_only_its_own_connection(server: LoopServer, app: App) -> None:
    with _connect(server) as slow, _connect(server) as other:
        slow.sendall(_get("/slow") + _get("/after"))
        other.sendall(_get("/quick"))
        quick = read_reply(other)
        assert quick is not None and quick.json()["path"] == "/quick"
        app.release.set()
        assert [seen["path"] for seen in _replies(slow, 2)] == ["/slow", "/after"]


def _answers_to_the_end(sock: socket.socket) -> list[tuple[int, bytes]]:
    """Every answer on `sock` until the server closes it: status and body."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    answers = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            int(line[15:]) for line in head.split(b"\r\n") if line.startswith(b"Content-Length:")
        )
        answers.append((int(head.split(b" ", 2)[1]), rest[:length]))
        data = rest[length:]
    return answers


@pytest.mark.parametrize(
    "refused",
    [b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: \x01\r\n\r\n", b"GARBAGE\r\n\r\n"],
)
def test_a_refusal_is_answered_after_every_request_before_it(
    server: LoopServer, app: App, refused: bytes
) -> None:
    """A request the app answers on the pool, one answered inline, then one the server
    refuses itself: the first two are answered, in order, before the refusal."""
    with _connect(server) as sock:
        sock.sendall(_get("/slow") + _get("/after") + refused)
        app.release.set()
        (slow, after, refusal) = _answers_to_the_end(sock)
        assert [slow[0], json.loads(slow[1])["path"]] == [200, "/slow"]
        assert [after[0], json.loads(after[1])["path"]] == [200, "/after"]
        assert refusal[0] == 400 and json.loads(refusal[1])["error"]["code"] == "bad_request"


@pytest.mark.parametrize("connection", [b"Upgrade, HTTP2-Settings", b"upgrade", b"close, Upgrade"])
def test_an_upgrade_is_not_taken_and_the_request_is_answered_with_its_body(
    server: LoopServer, connection: bytes
) -> None:
    upgrade = (
        b"POST /in HTTP/1.1\r\nHost: x\r\nConnection: " + connection + b"\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )
    with _connect(server) as sock:
        sock.sendall(upgrade + _get("/next", b"Connection: close\r\n"))
        answers = _answers_to_the_end(sock)
    seen = json.loads(answers[0][1])
    assert (answers[0][0], seen["path"], seen["body"]) == (200, "/in", "hello")
    assert "HTTP_UPGRADE" not in seen["headers"]
    # A `close` the client asked for alongside still holds; otherwise the next is answered.
    paths = [json.loads(body)["path"] for _, body in answers]
    assert paths == (["/in"] if b"close" in connection else ["/in", "/next"])


def test_a_chunked_body_reaches_the_app_whole(server: LoopServer) -> None:
    head = b"POST /in HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
    reply = request(server.port, head, b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert reply is not None and reply.json()["body"] == "abcde"


@pytest.mark.parametrize(
    ("head", "body"),
    [
        (b"POST /in HTTP/1.1\r\nHost: x\r\nContent-Length: 1001", b""),
        (b"POST /in HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked", b"3e9\r\n" + b"x" * 1001),
    ],
)
def test_a_body_over_the_limit_is_a_json_413(server: LoopServer, head: bytes, body: bytes) -> None:
    _refused(request(server.port, head, body), 413, "body_too_large")


def test_expect_100_continue_is_answered_before_the_body(server: LoopServer) -> None:
    with _connect(server) as sock:
        sock.sendall(
            b"POST /in HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"ok")
        reply = read_reply(sock)
        assert reply is not None and reply.json()["body"] == "ok"
    _refused(request(server.port, _get("/", b"Expect: magic")[:-2]), 417, "expectation_failed")


@pytest.mark.parametrize(
    ("head", "status", "code"),
    [
        (b"GET /\x01 HTTP/1.1\r\nHost: x", 400, "bad_request"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Ctl: a\x01b", 400, "bad_request"),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked",
            400,
            "bad_request",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Encoding: gzip",
            415,
            "unsupported_media_type",
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked", 400, "bad_request"),
        (b"GET / HTTP/2.0\r\nHost: x", 400, "bad_request"),
        (b"GET / HTTP/0.9\r\nHost: x", 400, "bad_request"),
        (b"GET / HTTP/1.2\r\nHost: x", 400, "bad_request"),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x", 414, "uri_too_long"),
        (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"Host: x", 431, "headers_too_large"),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000, 431, "headers_too_large"),
    ],
)
def test_a_malformed_request_is_a_json_error(
    server: LoopServer, head: bytes, status: int, code: str
) -> None:
    _refused(request(server.port, head), status, code)


@pytest.mark.parametrize(
    "path", [b"/a/%ff", b"/a/%FF/b?x=%C3%A9", b"/%ED%B0%80", b"/%C3", b"/%C3%A9%80"]
)
@pytest.mark.parametrize("direct", [False, True])
def test_a_path_that_is_not_utf8_is_a_json_400(app: App, path: bytes, direct: bool) -> None:
    """Refused before the app, or a direct answer, could read it with replacement characters."""
    asked: list[str] = []

    def answer(incoming: Incoming) -> Outgoing:
        asked.append(incoming.path)
        return 200, [], b""

    served = LoopServer(app, LIMITS, _inline, answer if direct else None)
    try:
        reply = request(served.port, b"GET " + path + b" HTTP/1.1\r\nHost: x")
    finally:
        served.stop()
    _refused(reply, 400, "bad_request")
    assert reply is not None and "UTF-8" in reply.json()["error"]["message"]
    assert asked == []


@pytest.mark.parametrize(
    ("path", "seen"),
    [
        (b"/caf%C3%A9/%F0%9F%8D%95?q=%ff", "/caf\xc3\xa9/\xf0\x9f\x8d\x95"),
        (b"/100%25", "/100%"),
    ],
)
def test_a_path_that_is_utf8_reaches_the_app(server: LoopServer, path: bytes, seen: str) -> None:
    reply = request(server.port, b"GET " + path + b" HTTP/1.1\r\nHost: x")
    assert reply is not None and reply.status == 200, reply
    assert reply.json()["path"] == seen  # PATH_INFO: the bytes as latin-1, as WSGI has it


def test_a_body_cut_short_is_a_json_400(server: LoopServer) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10"
    _refused(request(server.port, head, b"abc", half_close=True), 400, "bad_request")


def test_an_app_that_fails_is_a_json_500(server: LoopServer) -> None:
    _refused(request(server.port, _get("/boom")[:-2]), 500, "internal_error")


def test_head_has_no_body_and_headers_keep_their_meaning(server: LoopServer) -> None:
    with _connect(server) as sock:
        sock.sendall(
            b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n" + _get("/g", b"X-A: 1\r\nX-A: 2\r\nX_A: 3\r\n")
        )
        head = sock.recv(4096)
        while head.count(b"HTTP/1.1 200") < 2:
            head += sock.recv(4096)
        first, _, rest = head.partition(b"\r\n\r\n")
        assert b"Content-Length" not in first and rest.startswith(b"HTTP/1.1 200")
        seen = json.loads(rest.partition(b"\r\n\r\n")[2])
        # Repeated headers are joined; one spelt with "_" could pass for another: dropped.
        assert seen["headers"]["HTTP_X_A"] == "1,2"


def test_the_app_s_connection_close_closes_the_connection(server: LoopServer) -> None:
    with _connect(server) as sock:
        sock.sendall(_get("/close"))
        reply = read_reply(sock)
        assert reply is not None and reply.headers["connection"] == "close"
        assert sock.recv(100) == b""


def test_idle_connections_are_closed_and_stalled_requests_refused(server: LoopServer) -> None:
    with _connect(server) as idle, _connect(server) as stalled:
        idle.sendall(_get("/a"))
        assert read_reply(idle) is not None
        stalled.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")

        def swept() -> bool:
            server.sweep()
            return all(p.closing for p in list(server.connections))

        wait_until(swept, timeout=5, interval=0.1)
        assert idle.recv(100) == b""
        _refused(read_reply(stalled), 408, "request_timeout")


def test_a_request_trickling_in_is_refused_when_it_takes_too_long(server: LoopServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        # Held here: a sweep forgets a connection once it is closed, maybe before it is seen.
        seen: set[HttpProtocol] = set()

        def trickled() -> bool:
            with contextlib.suppress(OSError):
                sock.sendall(b"X-A: b\r\n")  # each piece in time; the whole too late
            server.sweep()
            seen.update(list(server.connections))
            return any(p.closing for p in seen)

        wait_until(trickled, timeout=5, interval=0.1)
        _refused(read_reply(sock), 408, "request_timeout")


def test_a_sweep_keeps_a_connection_made_but_not_yet_connected(app: App) -> None:
    """The loop connects a protocol a turn after it makes it: a sweep in between keeps it,
    or that connection would never be swept (idle, stalled, or at shutdown)."""
    with ThreadPoolExecutor(1) as pool:
        site = Site(app, LIMITS, lambda method, target: True, pool, "127.0.0.1", "80")
        made = HttpProtocol(site)
        connections = {made}
        sweep(connections, LIMITS)
        assert connections == {made}
        made.last_active -= LIMITS.keepalive_seconds + 1  # never connected: forgotten
        sweep(connections, LIMITS)
        assert connections == set()


def test_a_client_that_never_reads_its_answers_is_cut_off_in_time(server: LoopServer) -> None:
    """It pipelines requests and reads nothing: its answers fill the socket, and a close
    would wait for them for ever. After `read_timeout_seconds` the connection is reset, and
    the server keeps it among its connections until it is closed for good."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.setblocking(False)
        pipeline = _get("/healthz") * 20_000
        with contextlib.suppress(BlockingIOError):
            while pipeline:
                pipeline = pipeline[sock.send(pipeline) :]
        seen: set[HttpProtocol] = set()

        def swept() -> set[HttpProtocol]:
            server.sweep()
            tracked = set(list(server.connections))
            seen.update(tracked)
            assert all(p.lost for p in seen - tracked)  # forgotten only once closed for good
            return tracked

        def reset() -> bool:
            swept()
            # tcp_info's first byte: the state the client's socket is in.
            return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == _TCP_CLOSE

        wait_until(reset, timeout=5, interval=0.1)
        wait_until(lambda: seen and not swept(), timeout=5, interval=0.1)
