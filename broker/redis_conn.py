"""Redis connections from one URL: `redis://`, `rediss://`, `unix://` or `sentinel://`."""

from __future__ import annotations

from typing import Any, TypeAlias
from urllib.parse import urlsplit

import redis
from redis.sentinel import Sentinel

from broker.errors import ConfigError

#: redis-py types every answer as `bytes | str`, whatever `decode_responses` says;
#: our clients always decode, so the client is typed loosely and our functions
#: declare the `str` types they return.
Redis: TypeAlias = Any


def connect(url: str, *, sentinel_master: str = "mymaster") -> Redis:
    """A client answering strings; `sentinel://h1:26379,h2:26379/0` asks Sentinel for the master."""
    if url.startswith("sentinel://"):
        parts = urlsplit(url)
        hosts = []
        for item in parts.netloc.split("@")[-1].split(","):
            host, _, port = item.partition(":")
            hosts.append((host, int(port or 26379)))
        db = int(parts.path.strip("/") or 0)
        sentinel = Sentinel(hosts, socket_timeout=5, password=parts.password)  # type: ignore[no-untyped-call]
        return sentinel.master_for(  # type: ignore[no-untyped-call]
            sentinel_master, db=db, decode_responses=True, password=parts.password
        )
    try:
        return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a Redis URL: {exc}") from exc
