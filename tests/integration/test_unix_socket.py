"""Switchboard on a Redis reached by its Unix socket (`REDIS_URL=unix://...`): the data and
Celery's transport (kombu's `redis+socket://`) both."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.stacks import own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis, require_redis_server
from tests.receivers import Receiver, texts, wait_delivered


def test_a_stack_on_a_unix_socket_takes_and_delivers(tmp_path: Path, receiver: Receiver) -> None:
    require_redis()  # the stack's helpers read the test's own databases too
    socket_path = tmp_path / "redis.sock"
    server = subprocess.Popen(
        [require_redis_server(), "--port", "0", "--unixsocket", str(socket_path), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(socket_path.exists, timeout=20, what="redis-server's socket")
        url = f"unix://{socket_path}?db=2"
        with own_stack(tmp_path / "stack.log", REDIS_URL=url, SWITCHBOARD_BROKER_URL="") as own:
            for role in ("web", "worker", "scheduler"):
                own.start(role)
            own.wait_ready()  # a worker is alive: its Celery connected through the socket
            channel = own.api.echo_channel(receiver.url)
            assert own.api.send(channel, "socket-user", "hi").status_code == 202
            wait_delivered(receiver, 1, "the reply, through the socket")
            assert texts(receiver.delivered()) == ["You said: hi"]
    finally:
        server.terminate()
        server.wait(timeout=20)
