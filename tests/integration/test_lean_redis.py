"""The client `connect()` makes for one Redis answers as redis-py's own does, and survives
what a pooled client survives: a connection the server closed, one left with unread data,
a restart of Redis, and a fork."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio

from broker.core.autopipe import AutoPipeline
from broker.core.connection import Redis, connect, connect_async
from broker.core.lean_redis import KeptAsyncConnections, LeanRedis
from switchboard.embedded_redis import free_port
from tests import redis_databases
from tests.polling import wait_until
from tests.prerequisites import require_redis, require_redis_server


@pytest.fixture
def clients() -> Iterator[tuple[Redis, Redis]]:
    """The lean client and redis-py's plain one, on one flushed database."""
    require_redis()
    url = redis_databases.url(redis_databases.db("app"))
    lean, plain = connect(url), redis.Redis.from_url(url, decode_responses=True)
    assert isinstance(lean, LeanRedis)
    plain.flushdb()
    yield lean, plain
    plain.flushdb()


def _pipeline(r: Redis, raise_on_error: bool = True) -> list[object]:
    pipe = r.pipeline(transaction=False)
    pipe.hset("h", mapping={"a": "1", "b": "2"})
    pipe.hgetall("h")
    pipe.set("s", "x", nx=True)
    pipe.zadd("z", {"m": 1.5})
    pipe.zrange("z", 0, -1, withscores=True)
    pipe.lpush("h", "wrong type")
    pipe.get("s")
    return pipe.execute(raise_on_error=raise_on_error)


def test_answers_and_errors_are_redis_pys(clients: tuple[Redis, Redis]) -> None:
    lean, plain = clients
    lean_answers = _pipeline(lean, raise_on_error=False)
    plain.flushdb()
    plain_answers = _pipeline(plain, raise_on_error=False)
    assert [repr(a) for a in lean_answers] == [repr(a) for a in plain_answers]
    assert lean_answers[1] == {"a": "1", "b": "2"} and lean_answers[4] == [("m", 1.5)]
    assert isinstance(lean_answers[5], redis.ResponseError)

    with pytest.raises(redis.ResponseError, match=r"Command # 6 \(LPUSH h wrong type\)"):
        _pipeline(lean)
    with pytest.raises(redis.exceptions.NoScriptError):
        lean.execute_command("EVALSHA", "0" * 40, 0)
    assert lean.set("k", "v") is True and lean.get("k") == "v"
    with pytest.raises(redis.DataError):
        lean.execute_command("SET", "k", None)  # as redis-py refuses it
    assert lean.pipeline(transaction=False).execute() == []


def test_transactions_still_go_through_multi(clients: tuple[Redis, Redis]) -> None:
    lean, _ = clients
    with lean.pipeline() as pipe:
        pipe.incr("n").incr("n")
        assert pipe.execute() == [1, 2]


def test_a_connection_closed_by_the_server_or_left_unread_is_started_afresh(
    clients: tuple[Redis, Redis],
) -> None:
    lean, plain = clients
    lean.set("k", "v")
    plain.client_kill_filter(_id=lean.client_id())  # the one connection the lean client kept
    assert lean.get("k") == "v"

    kept = lean._kept._idle[-1]  # type: ignore[attr-defined]
    kept.send_command("PING")  # its answer is never read
    assert kept.can_read(timeout=5)
    assert lean.get("k") == "v"


def test_a_call_cut_short_leaves_no_answer_behind(
    clients: tuple[Redis, Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    lean, _ = clients
    lean.set("k", "v")

    def cut_short(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(LeanRedis, "parse_response", cut_short)
        with pytest.raises(KeyboardInterrupt):
            lean.get("k")  # sent; its answer is on its way
    assert lean.incr("n") == 1  # not the answer of the GET cut short


def test_a_forked_child_uses_connections_of_its_own(clients: tuple[Redis, Redis]) -> None:
    lean, _ = clients
    lean.set("k", "parent")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's outcome comes back through the pipe)
        try:
            lean.set("k", "child")
            os.write(write, (lean.get("k") or "").encode())
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 100) == b"child"
    assert lean.get("k") == "child"


def test_redis_restarted_between_calls_is_reconnected_to(tmp_path: object) -> None:
    server = require_redis_server()
    port = free_port()
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_until(lambda: _answers(port), timeout=20, what="redis-server to answer")
        return process

    process = start()
    lean = connect(f"redis://127.0.0.1:{port}/0")
    try:
        lean.set("k", "before")
        process.terminate()
        process.wait(10)
        process = start()
        pipe = lean.pipeline(transaction=False)
        pipe.set("k", "after").get("k")
        assert pipe.execute() == [True, "after"]
    finally:
        process.terminate()
        process.wait(10)


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


def test_the_delivery_loops_batches_answer_as_redis_pys_pipeline_does(
    clients: tuple[Redis, Redis],
) -> None:
    _, plain = clients
    commands: list[tuple[object, ...]] = [
        ("HSET", "h", "a", "1", "b", "2"),
        ("HGETALL", "h"),
        ("ZADD", "z", 1.5, "m"),
        ("ZSCORE", "z", "m"),
        ("LPUSH", "h", "wrong type"),
        ("SET", "s", "é", "NX"),
        ("GET", "s"),
        ("CONFIG GET", "maxmemory-policy"),
    ]
    url = redis_databases.url(redis_databases.db("app"))

    async def both() -> tuple[list[object], list[object]]:
        pipeline = AutoPipeline(connect_async(url))
        assert pipeline._kept is not None  # the lean road is the one tested
        mine = await asyncio.gather(*(pipeline.call(*c) for c in commands), return_exceptions=True)
        plain.flushdb()
        theirs = redis.asyncio.Redis.from_url(url, decode_responses=True).pipeline(False)
        for command in commands:
            theirs.execute_command(*command)
        return list(mine), await theirs.execute(raise_on_error=False)

    mine, theirs = asyncio.run(both())
    assert [repr(a) for a in mine] == [repr(a) for a in theirs]
    assert mine[1] == {"a": "1", "b": "2"} and mine[3] == 1.5 and mine[6] == "é"


def test_a_batch_after_its_connection_was_closed_or_cut_short_is_answered(
    clients: tuple[Redis, Redis],
) -> None:
    _, plain = clients
    url = redis_databases.url(redis_databases.db("app"))

    async def go() -> None:
        pipeline = AutoPipeline(connect_async(url))
        assert await pipeline.call("SET", "k", "v") is True
        plain.client_kill_filter(_id=await pipeline.call("CLIENT", "ID"))
        assert await pipeline.call("GET", "k") == "v"

        kept = KeptAsyncConnections(connect_async(url))
        waiting = asyncio.ensure_future(kept.send([("BLPOP", "list", 30)]))
        while not any(c["cmd"] == "blpop" for c in plain.client_list()):
            await asyncio.sleep(0.01)  # polled: until Redis has the BLPOP
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        plain.rpush("list", "x")  # what the BLPOP cut short would have answered
        assert await kept.send([("INCR", "n")]) == [1]

    asyncio.run(go())
