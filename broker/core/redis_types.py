"""The types of our Redis clients. They always decode answers: typed by the `types-redis`
stubs, whose client and pipeline know it (redis-py's own types say `bytes | str` for every
answer). At run time the stubs' generics do not exist, so these are the plain classes."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import redis
import redis.asyncio
import redis.client
import redis.cluster

if TYPE_CHECKING:
    Redis: TypeAlias = redis.Redis[str]
    Pipeline: TypeAlias = redis.client.Pipeline[str]
    AsyncRedis: TypeAlias = redis.asyncio.Redis[str]
    ClusterBase: TypeAlias = redis.cluster.RedisCluster[str]
else:
    Redis = redis.Redis
    Pipeline = redis.client.Pipeline
    AsyncRedis = redis.asyncio.Redis
    ClusterBase = redis.cluster.RedisCluster
