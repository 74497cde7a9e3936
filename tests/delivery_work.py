"""Working delivery queues in tests without a worker: the delivery loop's code, run in the
test's thread on the test's Redis (fakeredis or real), to the end of its bookkeeping."""

from __future__ import annotations

import asyncio
import secrets

import fakeredis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from broker.core import ids, keys
from broker.core.autopipe import AutoPipeline
from broker.core.connection import AsyncRedis, Redis, index_shards
from broker.core.settings import Settings
from broker.delivery import queues
from broker.delivery.bookkeeping import Bookkeeping
from broker.delivery.endpoint_cache import EndpointCache
from broker.delivery.http_client import HttpClient
from broker.delivery.records import Delivery, split_due_member


def due_members(r: Redis) -> dict[str, float]:
    """Every entry of `sb:due` (of all its shards, on a Redis Cluster), soonest first."""
    found = [
        (member, score)
        for shard in keys.shards(keys.DUE, index_shards(r))
        for member, score in r.zrange(shard, 0, -1, withscores=True)
    ]
    return dict(sorted(found, key=lambda entry: entry[1]))


def due_entries(r: Redis, ref: str) -> dict[str, float]:
    """A queue's entries on `sb:due`, by member."""
    return {
        member: score
        for member, score in due_members(r).items()
        if split_due_member(member)[0] == ref
    }


def work_queue(r: Redis, settings: Settings, client: HttpClient, ref: str) -> queues.QueueRun:
    """Work one queue as a worker would that was handed its entry on `sb:due` (a new
    claim when it has none)."""
    entries = due_entries(r, ref)
    member = min(entries, key=entries.__getitem__) if entries else ref
    (run,) = _work(r, settings, client, [member])
    return run


def work_due(r: Redis, settings: Settings, client: HttpClient) -> list[queues.QueueRun]:
    """Work every queue on `sb:due` once, due or not."""
    return _work(r, settings, client, list(due_members(r)))


def _work(
    r: Redis, settings: Settings, client: HttpClient, members: list[str]
) -> list[queues.QueueRun]:
    async def work() -> list[queues.QueueRun]:
        pipeline = AutoPipeline(_async_twin(r))
        endpoints = EndpointCache(pipeline)
        book = Bookkeeping(settings, pipeline, endpoints.state_changed)
        deliverer = queues.Deliverer(
            settings,
            pipeline,
            client,
            endpoints,
            book,
            lambda conversation_key: pipeline.call("RPUSH", keys.READY, conversation_key),
        )
        runs = []
        for member in members:
            ref, token = split_due_member(member)
            runs.append(await queues.work_queue(deliverer, ref, token or secrets.token_hex(8)))
        await book.flush()
        await client.close()
        return runs

    return asyncio.run(work())


def _async_twin(r: Redis) -> AsyncRedis:
    """An asyncio client of the same Redis (fakeredis names its servers by host and port)."""
    if isinstance(r, redis.cluster.RedisCluster):
        node = r.get_default_node()
        return redis.asyncio.cluster.RedisCluster(
            host=node.host, port=node.port, decode_responses=True
        )
    where = {name: r.connection_pool.connection_kwargs[name] for name in ("host", "port", "db")}
    if isinstance(r, fakeredis.FakeRedis):
        return fakeredis.FakeAsyncRedis(**where, decode_responses=True)
    return redis.asyncio.Redis(**where, decode_responses=True)


def new_delivery(
    conversation_key: str, endpoint_id: str, text: str, at: float = 1000.0
) -> Delivery:
    """A bot's message `{"text": text}` for `endpoint_id`, made at `at`, not yet saved."""
    return Delivery.new(
        id=ids.delivery_id(conversation_key, ids.random_hex(8), 1),
        endpoint_id=endpoint_id,
        kind="message",
        bot_id="b",
        conversation_id="user",
        body={"text": text},
        created_at=at,
    )
