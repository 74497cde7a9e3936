"""What a round trip to Redis costs the calling process, in CPU: redis-py's own client, the
client `connect()` makes (`broker/core/lean_redis.py`), and, as the yardstick, the same
bytes written to a socket and read back through hiredis.

    python -m bench.redis_calls [--calls 5000]

Prints one JSON line: µs of CPU per call for a pipeline of four commands and for a single
command, by client, and each as a ratio to the yardstick of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis
import redis.asyncio

from bench.databases import BenchDatabases
from broker.core.connection import connect, connect_async
from broker.core.lean_redis import KeptAsyncConnections

#: A turn step's kind of pipeline: a script-sized write, two index writes and a read.
_COMMANDS: list[tuple[Any, ...]] = [
    ("HSET", "h", "a", "1", "b", "2"),
    ("ZADD", "z", 1.5, "m"),
    ("RPUSH", "l", "x"),
    ("HGETALL", "h"),
]


def _cpu_us(call: Callable[[], object], calls: int) -> float:
    call()
    started = time.process_time()
    for _ in range(calls):
        call()
    return round((time.process_time() - started) / calls * 1e6, 1)


def _pipeline(r: Any) -> Callable[[], object]:
    def run() -> object:
        pipe = r.pipeline(transaction=False)
        for command in _COMMANDS:
            pipe.execute_command(*command)
        return pipe.execute()

    return run


def _raw_socket(host: str, port: int, db: int) -> tuple[Callable[[], object], Callable[[], object]]:
    """A pipeline and a single command on a bare socket, answers parsed by hiredis."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = hiredis.Reader(encoding="utf-8")

    def exchange(commands: list[tuple[Any, ...]]) -> list[Any]:
        sock.sendall(b"".join([hiredis.pack_command(c) for c in commands]))
        answers: list[Any] = []
        while len(answers) < len(commands):
            answer = reader.gets()
            if answer is False:
                reader.feed(sock.recv(65536))
            else:
                answers.append(answer)
        return answers

    exchange([("SELECT", db)])
    return (lambda: exchange(_COMMANDS)), (lambda: exchange([("RPUSH", "l", "x")]))


def _async_us(make: Callable[[], Any], calls: int, lean: bool) -> float:
    async def run() -> float:
        client = make()
        if lean:
            kept = KeptAsyncConnections(client)

            async def one() -> object:
                return await kept.send(_COMMANDS)
        else:

            async def one() -> object:
                pipe = client.pipeline(transaction=False)
                for command in _COMMANDS:
                    pipe.execute_command(*command)
                return await pipe.execute()

        await one()
        started = time.process_time()
        for _ in range(calls):
            await one()
        return round((time.process_time() - started) / calls * 1e6, 1)

    return asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args(argv)
    databases = BenchDatabases.claimed()
    databases.fresh()
    url = databases.data_url
    pool = redis.BlockingConnectionPool.from_url(url, decode_responses=True)
    plain, lean = redis.Redis(connection_pool=pool), connect(url)
    where = plain.connection_pool.connection_kwargs
    raw_pipeline, raw_single = _raw_socket(where["host"], where["port"], where["db"])
    figures = {
        "pipeline_us": {
            "socket": _cpu_us(raw_pipeline, args.calls),
            "redis-py": _cpu_us(_pipeline(plain), args.calls),
            "lean": _cpu_us(_pipeline(lean), args.calls),
        },
        "single_us": {
            "socket": _cpu_us(raw_single, args.calls),
            "redis-py": _cpu_us(lambda: plain.rpush("l", "x"), args.calls),
            "lean": _cpu_us(lambda: lean.rpush("l", "x"), args.calls),
        },
        "async_pipeline_us": {
            "redis-py": _async_us(
                lambda: redis.asyncio.Redis.from_url(url, decode_responses=True), args.calls, False
            ),
            "lean": _async_us(lambda: connect_async(url), args.calls, True),
        },
    }
    for kind, socket_us in (("pipeline", "pipeline_us"), ("single", "single_us")):
        yardstick = figures[socket_us]["socket"]
        figures[f"{kind}_vs_socket"] = {
            name: round(value / yardstick, 2) for name, value in figures[socket_us].items()
        }
    databases.fresh()
    print(json.dumps({"benchmark": "redis_calls", "calls": args.calls, **figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
