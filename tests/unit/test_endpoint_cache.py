"""The delivery loop's endpoint cache when Redis fails under a read: the error reaches the
caller, and no error is left behind for asyncio to log as never retrieved."""

from __future__ import annotations

import asyncio
import gc
from typing import Any, cast

import pytest
import redis

from broker.core.autopipe import AutoPipeline
from broker.delivery.endpoint_cache import EndpointCache


class _TimingOut:
    """An AutoPipeline whose every command fails, as on a connection that stopped answering."""

    def call(self, *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        loop.call_soon(future.set_exception, redis.TimeoutError("Timeout reading from socket"))
        return future


def test_a_failed_read_leaves_no_error_unretrieved() -> None:
    unretrieved: list[dict[str, Any]] = []

    async def read() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: unretrieved.append(context))
        cache = EndpointCache(cast(AutoPipeline, _TimingOut()))
        with pytest.raises(redis.TimeoutError):
            await cache.get("ep_1")
        for _ in range(3):  # let every command's answer come
            await asyncio.sleep(0)
        gc.collect()  # asyncio says "never retrieved" when an unread error is collected

    asyncio.run(read())
    assert unretrieved == []
