"""`redis-server` processes on free loopback ports, the pieces of the local Redis Cluster and
Sentinel set-ups (`switchboard.local_cluster`, `switchboard.local_sentinel`)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import redis


@dataclass
class Server:
    """One redis-server: a data node, a cluster node or a Sentinel."""

    port: int
    folder: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis[str]:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)

    def start(self, binary: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, *self.args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: bool(self.client().ping()), f"redis-server on {self.address}")

    def stop(self, *, hard: bool = False) -> None:
        """Stop the server: with SIGKILL when `hard`, else with SIGTERM (a Redis 7 master
        then waits, up to 10 s, for its replicas to catch up)."""
        if self.process is None:
            return
        if hard:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=30)
        self.process = None


class SetUp:
    """Servers that work together: `start()` makes them (and returns the set-up), `stop()`
    stops them all; as a context manager, started on entering and stopped on leaving, or
    should the start fail half-way."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def server_binary(given: str) -> str:
    """`given`, or the redis-server on PATH."""
    found = given or shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server on PATH")
    return found


def data_node_args(port: int, folder: Path) -> list[str]:
    """A data node's arguments: loopback only, nothing kept on disk."""
    return [
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(folder),
        "--save", "",
        "--appendonly", "no",
        "--logfile", str(folder / "redis.log"),
    ]  # fmt: skip


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Until `check()` is true (a Redis error counts as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")
