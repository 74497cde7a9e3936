"""redis-py's client for one Redis, with a shorter road for what the hot paths send: single
commands and pipelines without MULTI, and the delivery loop's batches (asyncio).

redis-py 8 takes a connection from its pool and gives it back on every call, and wraps
each call in observability hooks and a retry closure. On loopback that costs several times
the round trip itself: about 130 µs of CPU for a pipeline of four commands, where the
socket's own work is about 25 µs (`python -m bench.redis_calls`). Every ingress request
and every step of a bot turn pays it.

This client keeps the connections it took from the pool between calls, in a stack of
its own, and sends and reads through redis-py's own connection, parser and answer
callbacks: the same answers, the same errors, the same retry policy. MULTI pipelines,
WATCH, pub/sub and locks go redis-py's usual way. `KeptAsyncConnections` does the same for
an asyncio client's batches, packed by hiredis (redis-py's asyncio connection packs in
Python, about 10 µs a command).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import hiredis
import redis
import redis.asyncio
import redis.client
from redis.asyncio.connection import AbstractConnection as AsyncConnection
from redis.connection import AbstractConnection

from broker.core.redis_types import AsyncRedis, Pipeline, Redis

T = TypeVar("T")

_PLAIN_POOLS = (redis.asyncio.ConnectionPool, redis.asyncio.BlockingConnectionPool)
_PLAIN_CONNECTIONS = (
    redis.asyncio.Connection,
    redis.asyncio.SSLConnection,
    redis.asyncio.UnixDomainSocketConnection,
)


def _packed(command: tuple[Any, ...]) -> bytes:
    """A command in RESP, packed by hiredis as redis-py packs it: a name of two words
    ("CLIENT ID") split, an argument of no Redis type a DataError."""
    name = command[0]
    if isinstance(name, str) and " " in name:
        command = (*name.split(), *command[1:])
    try:
        packed: bytes = hiredis.pack_command(command)
    except TypeError as error:
        raise redis.DataError(str(error)) from error
    return packed


class _KeptConnections:
    """The connections a client took from its pool and keeps between calls. Taking one is a
    pop from a list (atomic under the GIL); the pool's connection limit still holds, since
    every connection came from it."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        # Typed loosely: the types-redis stubs lag redis-py 8's signatures.
        self._pool: Any = pool
        self._idle: list[AbstractConnection] = []
        self._pid = os.getpid()

    def call(self, exchange: Callable[[AbstractConnection], T]) -> T:
        """`exchange` on a ready connection, again on a new one (as redis-py's retry policy
        says) when the connection fails."""
        connection = self._take()
        try:
            answer = connection.retry.call_with_retry(
                lambda: exchange(connection), lambda _error: connection.disconnect()
            )
        except redis.ResponseError:
            self._idle.append(connection)
            raise  # Redis's own error answer: every answer was read
        except BaseException:
            # Anything else may leave answers unread, still on their way: start afresh, on
            # a connection the pool connects as it hands it out. (Kept, a closed connection
            # would be connected twice, and a Redis that does not answer waited for twice:
            # once to see whether it can be read, once to send.)
            connection.disconnect()
            self._pool.release(connection)
            raise
        self._idle.append(connection)
        return answer

    def _take(self) -> AbstractConnection:
        if self._pid != os.getpid():
            # A forked child must not share its parent's sockets: it takes its own.
            self._idle, self._pid = [], os.getpid()
        try:
            connection = self._idle.pop()
        except IndexError:
            fresh: AbstractConnection = self._pool.get_connection()
            return fresh
        try:
            # Unread data, or a server that closed the connection: start it afresh, as the
            # pool does for the connections it hands out.
            if connection.can_read():
                connection.disconnect()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            connection.disconnect()
        return connection


class LeanPipeline(Pipeline):
    """A pipeline whose plain (non-MULTI) execution uses its client's kept connections."""

    kept: _KeptConnections

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        if self.transaction or self.explicit_transaction or self.watching or self.scripts:
            return super().execute(raise_on_error)
        stack = self.command_stack
        if not stack:
            return []
        try:
            return self.kept.call(lambda connection: self._exchange(connection, raise_on_error))
        finally:
            self.command_stack = []

    def _exchange(self, connection: Any, raise_on_error: bool) -> list[Any]:
        # `connection` and `pipeline` typed loosely: the types-redis stubs lag redis-py 8.
        stack = self.command_stack
        pipeline: Any = self
        connection.send_packed_command([b"".join([_packed(args) for args, _ in stack])])
        answers: list[Any] = []
        for args, options in stack:
            try:
                answers.append(pipeline.parse_response(connection, args[0], **options))
            except redis.ResponseError as error:
                answers.append(error)
        if raise_on_error:
            pipeline.raise_first_error(stack, answers)
        return answers


class LeanRedis(Redis):
    """`redis.Redis` over one connection pool, with single commands and plain pipelines on
    kept connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept = _KeptConnections(self.connection_pool)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> LeanPipeline:
        pipe = LeanPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.kept = self._kept
        return pipe

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if getattr(self, "connection", None) is not None:  # a single-connection client
            return super().execute_command(*args, **options)

        def exchange(connection: Any) -> Any:
            connection.send_packed_command(
                [_packed(args)], check_health=options.get("check_health", True)
            )
            return self.parse_response(connection, args[0], **options)

        return self._kept.call(exchange)


class KeptAsyncConnections:
    """For an asyncio client of one Redis: batches of commands, each sent in one write and
    its answers read on a connection kept between batches. Only for a plain connection pool
    (`takes`): Sentinel's pool finds its master as it hands connections out."""

    def __init__(self, r: AsyncRedis) -> None:
        # Typed loosely: the types-redis stubs lag redis-py 8.
        self._pool: Any = r.connection_pool
        self._callbacks: Any = r.response_callbacks
        self._idle: list[AsyncConnection] = []

    @staticmethod
    def takes(r: object) -> bool:
        """Whether `r` speaks to one Redis through redis-py's own pool and connections."""
        pool: Any = getattr(r, "connection_pool", None)
        return type(pool) in _PLAIN_POOLS and pool.connection_class in _PLAIN_CONNECTIONS

    async def send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Each command's answer, or the ResponseError Redis answered it with."""
        connection = await self._take()
        try:
            return await connection.retry.call_with_retry(
                lambda: self._exchange(connection, commands), lambda _error: connection.disconnect()
            )
        except BaseException:
            await connection.disconnect()  # answers may be unread, still on their way
            raise
        finally:
            self._idle.append(connection)

    async def _take(self) -> AsyncConnection:
        try:
            connection: Any = self._idle.pop()  # Any: the stubs know no `can_read`
        except IndexError:
            fresh: AsyncConnection = await self._pool.get_connection()
            return fresh
        try:
            if await connection.can_read():
                await connection.disconnect()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            await connection.disconnect()
        taken: AsyncConnection = connection
        return taken

    async def _exchange(self, connection: AsyncConnection, commands: list[tuple[Any, ...]]) -> Any:
        await connection.send_packed_command(b"".join([_packed(c) for c in commands]))
        answers: list[Any] = []
        for command in commands:
            try:
                answer = await connection.read_response()
            except redis.ResponseError as error:
                answers.append(error)
                continue
            callback = self._callbacks.get(command[0])
            answers.append(callback(answer) if callback else answer)
        return answers
