"""Endpoints as the delivery loop sees them: their record and health state, read from Redis
at most once a second per endpoint, and the state kept current by the loop's own
outcomes in between. A change through the API (a new URL, a rotated secret, an endpoint
disabled or enabled) is announced on `sb:endpoint-changes` and applies at once; should
the announcement be missed, within a second."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import redis.asyncio.cluster

from broker.core import keys, logs
from broker.core.autopipe import AutoPipeline
from broker.core.connection import REDIS_TROUBLE, AsyncRedis
from broker.delivery import health
from broker.delivery.endpoint import Endpoint

log = logging.getLogger(__name__)
#: Says when Redis answers again after the trouble logged here.
redis_outage = logs.RedisOutage(log)

#: How long an endpoint's record and state are used before they are read again (seconds).
FRESH_FOR = 1.0


@dataclass
class _Seen:
    endpoint: Endpoint | None
    state: str
    at: float


class EndpointCache:
    def __init__(self, redis: AutoPipeline) -> None:
        self._redis = redis
        self._seen: dict[str, _Seen] = {}

    async def get(self, endpoint_id: str) -> tuple[Endpoint | None, str]:
        """The endpoint (None when it was removed) and its health state."""
        seen = self._seen.get(endpoint_id)
        if seen is None or time.monotonic() - seen.at > FRESH_FOR:
            raw, state = await _read(self._redis, endpoint_id)
            seen = _Seen(Endpoint.from_redis(raw) if raw else None, state, time.monotonic())
            self._seen[endpoint_id] = seen
        return seen.endpoint, seen.state

    async def follow_changes(self, r: AsyncRedis) -> None:
        """Forget endpoints as their changes are announced; runs until cancelled."""
        while True:
            try:
                if isinstance(r, redis.asyncio.cluster.RedisCluster):
                    # Its pub/sub routes by the slots it knows, and learning them is left
                    # to the first command.
                    await r.initialize()
                async with r.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(keys.ENDPOINT_CHANGES)
                    redis_outage.ended()
                    self._seen.clear()  # what changed while we were not listening
                    async for message in pubsub.listen():
                        self._seen.pop(str(message["data"]), None)
            except REDIS_TROUBLE as exc:
                log.warning("not following endpoint changes for now: %s", exc)
                redis_outage.began()
                await asyncio.sleep(1.0)

    def state_changed(self, endpoint_id: str, state: str) -> None:
        seen = self._seen.get(endpoint_id)
        if seen is not None:
            seen.state = state


async def _read(redis: AutoPipeline, endpoint_id: str) -> tuple[dict[str, str], str]:
    raw = redis.call("HGETALL", keys.endpoint(endpoint_id))
    state = redis.call("HGET", *health.state_read(endpoint_id))
    # Together: should the first fail, the second's error is still taken (asyncio logs an
    # error no one took as "Future exception was never retrieved").
    fields, found = await asyncio.gather(raw, state)
    return fields, found or "healthy"
