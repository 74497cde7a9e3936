"""Working delivery queues in unit tests: the delivery loop's code on fakeredis, with a
scripted client, run to the end of its bookkeeping."""

from __future__ import annotations

import asyncio
import secrets

import fakeredis

from broker.core import keys
from broker.core.autopipe import AutoPipeline
from broker.core.connection import Redis
from broker.core.settings import Settings
from broker.delivery import queues
from broker.delivery.bookkeeping import Bookkeeping
from broker.delivery.endpoint_cache import EndpointCache
from broker.delivery.http_client import HttpClient
from broker.delivery.records import split_due_member


def due_entries(r: Redis, ref: str) -> dict[str, float]:
    """A queue's entries on `sb:due`, by member."""
    return {
        member: score
        for member, score in r.zrange(keys.DUE, 0, -1, withscores=True)
        if split_due_member(member)[0] == ref
    }


def work_queue(r: Redis, settings: Settings, client: HttpClient, ref: str) -> queues.QueueRun:
    """Work one queue as a worker would that was handed its entry on `sb:due` (a new
    claim when it has none)."""
    entries = due_entries(r, ref)
    token = split_due_member(min(entries, key=entries.__getitem__))[1] if entries else ""

    async def work() -> queues.QueueRun:
        # The same fake server: fakeredis names it by host and port.
        where = {name: r.connection_pool.connection_kwargs[name] for name in ("host", "port", "db")}
        redis = AutoPipeline(fakeredis.FakeAsyncRedis(**where, decode_responses=True))
        endpoints = EndpointCache(redis)
        book = Bookkeeping(settings, redis, endpoints.state_changed)
        deliverer = queues.Deliverer(
            settings,
            redis,
            client,
            endpoints,
            book,
            lambda conversation_key: redis.call("RPUSH", keys.READY, conversation_key),
        )
        run = await queues.work_queue(deliverer, ref, token or secrets.token_hex(8))
        await book.flush()
        return run

    return asyncio.run(work())
