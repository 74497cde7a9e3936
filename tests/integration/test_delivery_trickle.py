"""An endpoint that answers one byte at a time, forever, through the real processes: each
attempt is cut at the channel's total time limit and recorded as a failure like any
other, the endpoint counts it, and no attempt is sent beyond the retry schedule."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.integration.delivery_helpers import dead_letters, endpoint
from tests.integration.stacks import Api
from tests.polling import wait_until

TRICKLE = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100


class _Trickler(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Trickle)
        self.webhook_ids: list[str] = []
        self.lock = threading.Lock()


class _Trickle(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Trickler)
        self.request.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            head += chunk
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"webhook-id:"):
                with server.lock:
                    server.webhook_ids.append(line.split(b":", 1)[1].strip().decode())
        try:
            for byte in TRICKLE:  # one byte every 0.2 s: 28 s for the whole answer
                self.request.sendall(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            return  # the client cut it: what we want


@pytest.fixture
def trickler() -> Iterator[_Trickler]:
    server = _Trickler()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_trickling_answer_is_cut_at_the_time_limit_recorded_and_retried_on_schedule(
    api: Api, trickler: _Trickler
) -> None:
    port = trickler.server_address[1]
    channel = api.echo_channel(
        f"http://127.0.0.1:{port}/hook", retrySchedule=[0, 0.2, 0.4], totalTimeout=1
    )
    started = time.monotonic()
    assert api.send(channel, "slow", "hello").status_code == 202

    wait_until(
        lambda: len(dead_letters(api, endpointId=channel["id"])) == 1,
        timeout=30,
        what="the reply to die after its three attempts",
    )
    took = time.monotonic() - started
    (dead,) = dead_letters(api, endpointId=channel["id"])
    attempts = dead["attempts"]
    assert len(attempts) == 3
    for attempt in attempts:
        assert attempt["error"] == "timeout after 1 s", attempt
        # Cut at the limit, however late a loaded machine's loop noticed: the whole answer
        # would take 28 s.
        assert 900 <= attempt["durationMs"] <= 3000, attempt
    # Three cut attempts and their waits, nowhere near the 28 s a whole answer takes.
    assert took < 10
    with trickler.lock:
        sent = list(trickler.webhook_ids)
    assert sent == [dead["id"]] * 3  # no send beyond the schedule, one webhook-id throughout
    # The endpoint's health counts them (written a moment after each attempt's record).
    wait_until(
        lambda: endpoint(api, channel["id"]).get("lastError") == "timeout after 1 s",
        what="the endpoint's last error",
    )
    view = endpoint(api, channel["id"])
    assert view["successRate"] == 0 and view["state"] != "healthy", view


def test_the_trickle_server_really_trickles() -> None:
    """The fixture itself: a plain client waiting for the whole answer waits long."""
    server = _Trickler()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            started = time.monotonic()
            assert client.recv(1) == b"H"
            assert client.recv(1) == b"T"
            assert time.monotonic() - started >= 0.15
    finally:
        server.shutdown()
        server.server_close()
