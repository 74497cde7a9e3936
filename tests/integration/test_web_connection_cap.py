"""A web process whose file descriptors are few, held by idle clients: it still answers new
ones, in place of the longest idle, and says once that it is at its cap."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from switchboard.connection_cap import connection_cap
from switchboard.orphans import die_with_parent
from tests.integration.raw_http import Reply, read_reply
from tests.integration.stacks import ADMIN_TOKEN, OwnStack, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis

#: The web process's hard limit of open files: low, so that the test is quick.
FD_LIMIT = 256
THREADS = 8


def _few_descriptors() -> None:
    die_with_parent()
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[OwnStack, Path]]:
    require_redis()
    log = tmp_path / "web.log"
    with own_stack(tmp_path / "stack.log") as own, log.open("wb") as output:
        web = subprocess.Popen(
            [
                *(sys.executable, "-m", "switchboard", "web", "--host", "127.0.0.1"),
                *("--port", str(own.port), "--workers", "1", "--threads", str(THREADS)),
            ],
            env={**os.environ, **own.env()},
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_few_descriptors,
        )
        try:
            wait_until(lambda: _ask(own.port, "/healthz"), timeout=60, what="the web process")
            yield own, log
        finally:
            web.terminate()
            web.wait(30)


def _ask(port: int, path: str, headers: str = "") -> Reply | None:
    """The answer on a new connection, or None when the connection is refused or reset."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
            return read_reply(sock)
    except OSError:
        return None


def test_idle_clients_past_the_cap_make_room_for_new_ones(web: tuple[OwnStack, Path]) -> None:
    own, log = web
    cap = connection_cap(FD_LIMIT, THREADS)
    with ExitStack() as held:
        idle = [
            held.enter_context(socket.create_connection(("127.0.0.1", own.port), timeout=5))
            for _ in range(cap + 100)  # more than the process has descriptors for
        ]
        for path, headers in [
            ("/healthz", ""),
            ("/v1/deliveries?limit=5", f"Authorization: Bearer {ADMIN_TOKEN}\r\n"),
        ]:
            answer = _ask(own.port, path, headers)
            assert answer is not None and answer.status == 200, (path, answer)
        # The first to connect, idle the longest, made room.
        assert idle[0].recv(100) == b""
    warned = wait_until(lambda: log.read_text().count("at the cap of"), timeout=5)
    assert warned == 1, log.read_text()
