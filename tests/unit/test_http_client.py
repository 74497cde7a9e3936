"""The outbound client against local servers: safety at connect time, no redirects, a hard
limit on the whole request, a cap on what is read, keep-alive."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from broker.core.settings import parse_allowlist
from broker.delivery import http_client
from broker.delivery.http_client import AttemptResult, HttpClient, RequestFailed
from tests.receivers import Answer, Receiver, always, closed_url

LOOPBACK = parse_allowlist("127.0.0.0/8")


def _client(allowlist: Any = LOOPBACK, read_cap: int = 64 * 1024) -> HttpClient:
    return HttpClient(allowlist, "Switchboard-Webhooks/test", read_cap)


def post(client: HttpClient, url: str, body: bytes = b"{}", **kwargs: Any) -> AttemptResult:
    headers = kwargs.pop("headers", {})
    return asyncio.run(client.post(url, body, headers, **kwargs))


class RawServer:
    """A TCP server on loopback that answers each connection with `handler(connection)`."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.connections = 0
        #: What each connection's first read brought.
        self.received: list[bytes] = []
        self._handler = handler
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            try:
                self.received.append(connection.recv(65536))
                self._handler(connection)
            except OSError:
                pass

    def stop(self) -> None:
        self._listener.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Callable[[socket.socket], None]) -> RawServer:
        servers.append(RawServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


class KeepAlive:
    """A handler that answers every request of its connection until the client closes it, and
    notes when that was."""

    def __init__(self) -> None:
        self.closed_at: float | None = None

    def __call__(self, connection: socket.socket) -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        connection.sendall(answer)  # to the request RawServer read
        while connection.recv(65536):
            connection.sendall(answer)
        self.closed_at = time.monotonic()


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """`wait_until` on the event loop, which must go on meanwhile."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s"
        await asyncio.sleep(0.02)


def _resolve_name(monkeypatch: pytest.MonkeyPatch, name: str, answers: list[str]) -> list[str]:
    """Make `name` resolve to each of `answers` in turn (the last one sticks); log lookups."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        address = answers[min(len(lookups), len(answers) - 1)]
        lookups.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return lookups


def test_a_plain_post_is_delivered_with_headers(receiver: Receiver) -> None:
    result = post(_client(), receiver.url, b'{"a":1}', headers={"webhook-id": "msg_1"})
    assert result.ok and result.status_code == 200 and result.error is None
    (hit,) = receiver.hits
    assert hit.raw == b'{"a":1}'
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["user-agent"] == "Switchboard-Webhooks/test"
    assert hit.headers["webhook-id"] == "msg_1"


def test_a_path_beyond_ascii_goes_percent_encoded(receiver: Receiver) -> None:
    result = post(_client(), receiver.url + "/caf\u00e9/\u65e5?q=\u00fc%20", b"{}")
    assert result.ok
    (hit,) = receiver.hits
    assert hit.path == "/hook/caf%C3%A9/%E6%97%A5?q=%C3%BC%20"


def test_loopback_is_refused_at_connect_time_without_the_allowlist(receiver: Receiver) -> None:
    result = post(_client(()), receiver.url)
    assert result.status_code is None
    assert result.error is not None and "outbound safety" in result.error
    assert receiver.hits == []


def test_a_name_rebound_to_a_forbidden_address_is_refused_at_connect_time(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    # At configuration the name was public; now it resolves to where the receiver listens.
    lookups = _resolve_name(monkeypatch, "hooks.example.com", ["127.0.0.1"])
    result = post(_client(()), f"http://hooks.example.com:{receiver.port}/hook")
    assert result.status_code is None and "outbound safety" in (result.error or "")
    assert lookups == ["127.0.0.1"]
    assert receiver.hits == []


def test_the_connection_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    # Resolved once: a second lookup (a rebinding to somewhere else) is never made.
    lookups = _resolve_name(monkeypatch, "hooks.example.com", ["127.0.0.1", "10.0.0.1"])
    result = post(_client(), f"http://hooks.example.com:{receiver.port}/hook")
    assert result.ok, result.error
    assert lookups == ["127.0.0.1"]
    assert receiver.hits[0].headers["host"] == f"hooks.example.com:{receiver.port}"


def test_proxies_from_the_environment_are_not_used(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    proxy = Receiver()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        result = post(_client(()), f"http://10.9.9.9:{receiver.port}/hook")
        assert result.status_code is None and "outbound safety" in (result.error or "")
        assert proxy.hits == []
    finally:
        proxy.stop()


def test_a_redirect_is_a_failure_and_is_not_followed(receiver: Receiver) -> None:
    target = f"http://127.0.0.1:{receiver.port}/target"
    receiver.behaviour = lambda hit: (
        Answer(int(hit.path.strip("/")), headers={"Location": target})
        if hit.path != "/target"
        else Answer(200)
    )
    for status in (301, 302, 303, 307, 308):
        result = post(_client(), f"http://127.0.0.1:{receiver.port}/{status}")
        assert result.status_code == status and not result.ok
        assert result.error == f"redirect to {target} not followed"
    assert [hit.path for hit in receiver.hits] == ["/301", "/302", "/303", "/307", "/308"]


def test_the_answer_is_kept_up_to_4_kib_and_retry_after_is_read(receiver: Receiver) -> None:
    receiver.behaviour = always(503, headers={"Retry-After": "7"}, body=b"x" * 10_000)
    result = post(_client(), receiver.url)
    assert result.status_code == 503
    assert result.response == "x" * 4096  # for the attempt log
    assert result.body == b"x" * 10_000  # for whoever reads the answer (an offload's)
    assert result.retry_after == "7"


def test_a_hanging_endpoint_times_out(receiver: Receiver) -> None:
    receiver.behaviour = lambda hit: Answer(200, delay=5)
    result = post(_client(), receiver.url, connect_timeout=1, total_timeout=0.3)
    assert result.status_code is None
    assert result.error == "timeout after 0.3 s"
    assert 250 <= result.duration_ms < 2000


@pytest.mark.parametrize(("status", "ok"), [(200, True), (500, False)])
def test_an_answer_that_trickles_is_cut_at_the_hard_limit_and_judged_by_its_status(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer], status: int, ok: bool
) -> None:
    def trickle(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 %d Whatever\r\nContent-Length: 1000\r\n\r\n" % status)
        for _ in range(1000):  # a byte every 50 ms: each read is quick, the whole is not
            connection.sendall(b"x")
            time.sleep(0.05)

    server = raw_server(trickle)
    started = time.monotonic()
    result = post(_client(), server.url, connect_timeout=1, total_timeout=0.5)
    assert time.monotonic() - started < 1.5
    # The endpoint gave its verdict in the status: a 2xx is delivered, sent again never.
    assert (result.status_code, result.ok) == (status, ok)
    assert result.response and set(result.response) == {"x"}
    with pytest.raises(RequestFailed, match=r"timeout after 0\.5 s"):
        # A bot's API call needs the whole answer.
        asyncio.run(
            _client().request("POST", server.url, b"{}", {}, connect_timeout=1, total_timeout=0.5)
        )


def test_an_answer_whose_body_the_connection_cuts_is_judged_by_its_status(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer],
) -> None:
    server = raw_server(
        lambda connection: connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    )
    result = post(_client(), server.url, total_timeout=2)
    assert result.ok and result.response == "abc"


def test_what_is_read_of_an_answer_is_capped(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer],
) -> None:
    sent: list[int] = []

    def flood(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        chunk = b"y" * 65536
        for _ in range(1500):
            connection.sendall(chunk)
            sent.append(len(chunk))

    server = raw_server(flood)
    result = post(_client(read_cap=1024), server.url, total_timeout=5)
    assert result.ok and result.response == "y" * 1024
    assert sum(sent) < 50_000_000  # the connection was dropped, not drained


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"garbage\r\n\r\n", "invalid HTTP answer: 'garbage'"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n", "Content-Length 'lots'"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"h" * 20000 + b"\r\n\r\n", "a line over 16 KiB"),
        (b"", "connection closed before an answer"),
    ],
    ids=["not-http", "bad-length", "bad-chunk", "huge-head", "nothing"],
)
def test_a_broken_answer_is_a_failure_that_says_why(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer], answer: bytes, error: str
) -> None:
    server = raw_server(lambda connection: connection.sendall(answer))
    result = post(_client(), server.url, total_timeout=2)
    assert result.status_code is None and error in (result.error or ""), result.error


def test_a_chunked_answer_is_read_and_the_connection_kept(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer],
) -> None:
    def chunked(connection: socket.socket) -> None:
        while True:
            connection.sendall(
                b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n"
            )
            if not connection.recv(65536):
                return

    server = raw_server(chunked)
    client = _client()

    async def twice() -> list[AttemptResult]:
        return [await client.post(server.url, b"{}", {}) for _ in range(2)]

    results = asyncio.run(twice())
    assert [(r.status_code, r.response) for r in results] == [(201, "abcde")] * 2
    assert server.connections == 1


def test_a_user_agent_given_stands_and_framing_headers_are_the_client_s_own(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer],
) -> None:
    """A bot's API call may name its User-Agent (sent instead of ours, not beside it); a
    second Content-Length or Host beside the client's own could make a proxy and the API
    read two different requests."""
    server = raw_server(lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    client = _client()
    answer = asyncio.run(
        client.request(
            "GET", server.url, b"", {"user-agent": "pizza/1"}, connect_timeout=1, total_timeout=1
        )
    )
    assert answer.status == 200
    (head,) = server.received
    assert [line for line in head.lower().split(b"\r\n") if line.startswith(b"user-agent")] == [
        b"user-agent: pizza/1"
    ]
    for framing in ("Content-Length", "host", "Transfer-Encoding"):
        with pytest.raises(RequestFailed, match=f"the {framing.lower()} header is the client"):
            asyncio.run(
                client.request(
                    "POST", server.url, b"{}", {framing: "2"}, connect_timeout=1, total_timeout=1
                )
            )
    assert len(server.received) == 1


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(receiver: Receiver) -> None:
    client = _client()
    with pytest.raises(RequestFailed, match="line break"):
        asyncio.run(
            client.request(
                "GET", receiver.url, b"", {"X-A": "1\r\nX-B: 2"}, connect_timeout=1, total_timeout=1
            )
        )
    assert receiver.hits == []


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://127.0.0.1:65536/x", "not a valid URL: Port out of range"),
        ("http://[::1/x", "not a valid URL: Invalid IPv6 URL"),
        ("http://127.0.0.1:80:80/x", "not a valid URL: Port could not be cast"),
        ("http://127.0.0.1:0/x", "not a valid URL: port 0"),
        ("http://a..b/x", "not a valid host name"),
    ],
)
def test_a_url_that_cannot_be_called_is_a_failure_that_says_why(url: str, said: str) -> None:
    """Such URLs come from conversations' variables (a bot's API calls): a failure, which
    the call's onError takes, never an exception out of the client."""
    result = post(_client(), url)
    assert result.status_code is None and (result.error or "").startswith(said)


def test_origins_of_many_hosts_are_let_go_when_they_hold_no_connection(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_client, "_ORIGINS_KEPT", 3)
    client = _client()
    for n in range(10):
        post(client, f"http://127.0.0.{n + 1}:9/x", connect_timeout=0.2)
    assert len(client._origins) <= 3
    assert post(client, receiver.url).status_code == 200


def test_idle_connections_are_closed_after_the_idle_time_though_never_used_again(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_client, "_IDLE_SECONDS", 0.5)
    monkeypatch.setattr(http_client, "_SWEEP_SECONDS", 0.05)
    handlers = [KeepAlive() for _ in range(3)]
    servers = [raw_server(handler) for handler in handlers]
    client = _client()

    async def deliver_once_each() -> list[float]:
        answered = []
        for server in servers:
            assert (await client.post(server.url, b"{}", {})).ok
            answered.append(time.monotonic())
        await until(lambda: all(handler.closed_at for handler in handlers))
        assert client._idle == {} and all(not origin.idle for origin in client._origins.values())
        return answered

    answered = asyncio.run(deliver_once_each())
    for handler, at in zip(handlers, answered, strict=True):
        assert handler.closed_at is not None and handler.closed_at - at > 0.4
    assert [server.connections for server in servers] == [1, 1, 1]


def test_idle_connections_are_capped_in_all_and_the_longest_idle_closed_first(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_client, "_IDLE_KEPT", 4)
    handlers = [KeepAlive() for _ in range(12)]
    servers = [raw_server(handler) for handler in handlers]
    client = _client()

    async def deliver_once_each() -> None:
        for server in servers:
            assert (await client.post(server.url, b"{}", {})).ok
            assert sum(len(origin.idle) for origin in client._origins.values()) <= 4
        await until(lambda: all(handler.closed_at for handler in handlers[:8]))
        assert [handler.closed_at is None for handler in handlers] == [False] * 8 + [True] * 4
        # The four kept are used again: no new connection.
        for server in servers[8:]:
            assert (await client.post(server.url, b"{}", {})).ok
        await client.close()

    asyncio.run(deliver_once_each())
    assert [server.connections for server in servers] == [1] * 12


def test_a_system_error_as_the_name_resolves_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the open-files limit, resolving a name fails with EMFILE, not a gaierror."""

    def no_more_files(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(socket, "getaddrinfo", no_more_files)
    result = post(_client(), "http://hooks.example.com/hook")
    assert result.status_code is None
    assert result.error == "cannot resolve hooks.example.com: Too many open files"


def test_a_closed_port_is_a_connection_error() -> None:
    result = post(_client(), closed_url())
    assert result.status_code is None and result.error == "connection refused"


def test_connections_are_kept_alive(receiver: Receiver) -> None:
    client = _client()
    connects = 0
    real = client._connect

    async def counting(origin: Any) -> Any:
        nonlocal connects
        connects += 1
        return await real(origin)

    client._connect = counting  # type: ignore[method-assign]

    async def five() -> list[AttemptResult]:
        return [await client.post(receiver.url, b"{}", {}) for _ in range(5)]

    assert all(result.ok for result in asyncio.run(five()))
    assert len(receiver.hits) == 5
    assert connects == 1
