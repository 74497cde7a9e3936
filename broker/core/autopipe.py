"""Redis commands from many coroutines of one event loop, sent together.

Each coroutine awaits its own answer, as with a plain client; every command queued while
the loop runs its other work goes to Redis in one round trip. The delivery loop works
hundreds of queues at once, and this is what keeps their Redis cost a command each rather
than a round trip each.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import NoScriptError

from broker.core import scripts
from broker.core.connection import AsyncRedis, HashFields, index_shards, on_cluster
from broker.core.lean_redis import KeptAsyncConnections


class AutoPipeline:
    def __init__(self, r: AsyncRedis) -> None:
        self._r = r
        self._kept = KeptAsyncConnections(r) if KeptAsyncConnections.takes(r) else None
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._flushing = False

    @property
    def index_shards(self) -> int:
        return index_shards(self._r)

    @property
    def on_cluster(self) -> bool:
        return on_cluster(self._r)

    def call(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; the future holds its answer (or its error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((args, future))
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._flush)
        return future

    def hset(self, key: str, fields: HashFields) -> asyncio.Future[Any]:
        return self.call("HSET", key, *(part for pair in fields.items() for part in pair))

    async def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one of `broker/lua/`'s scripts; EVAL loads it where Redis lacks it."""
        found = scripts.lua(name)
        try:
            return await self.call("EVALSHA", found.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.call("EVAL", found.source, len(keys), *keys, *args)

    def _flush(self) -> None:
        self._flushing = False
        batch, self._queued = self._queued, []
        asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            answers = await self._answers([args for args, _ in batch])
        except Exception as exc:  # the connection failed: every caller hears of it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if future.done():
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    async def _answers(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        if self._kept:
            return await self._kept.send(commands)
        pipe = self._r.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        answers: list[Any] = await pipe.execute(raise_on_error=False)
        return answers
