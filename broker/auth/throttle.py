"""Failed authentications, counted per client address and per target (a channel, a bot's
verify tokens or API tokens, the admin token), in fixed windows: past a burst of failures,
the next tries are answered 429 with `Retry-After` without being checked, so guessing a
token costs time (docs/wire-contract.md §1c)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from broker.core import keys
from broker.core.connection import Pipeline, Redis
from broker.core.errors import RateLimited
from broker.core.settings import Settings


def counters(settings: Settings, client: str, target: str) -> list[tuple[str, int]]:
    """The failure counters a request of `client` against `target` is checked against, each
    with its limit (0: none)."""
    return [
        (keys.auth_failures("address", client), settings.auth_failures),
        (keys.auth_failures("target", target), settings.auth_failures_per_target),
    ]


def check(
    r: Redis,
    settings: Settings,
    client: str,
    target: str,
    read: Callable[[Pipeline], object] | None = None,
) -> list[Any]:
    """RateLimited when the client, or everyone against `target`, failed too often lately.

    `read` queues what the check of the credentials needs on the same pipeline (one round
    trip for both); its answers are returned.
    """
    checked = counters(settings, client, target)
    pipe = r.pipeline(transaction=False)
    for key, _ in checked:
        pipe.get(key)
    if read is not None:
        read(pipe)
    answers = pipe.execute()
    for (key, limit), count in zip(checked, answers, strict=False):
        if limit > 0 and count is not None and int(count) >= limit:
            # Read only when refusing: a request that passes costs one round trip.
            raise refusal(r.pttl(key))
    return answers[len(checked) :]


def refusal(ttl_ms: int) -> RateLimited:
    """The 429 of a client or target over its limit, whose counter expires in `ttl_ms`."""
    return RateLimited(
        "too many failed authentications; try again later",
        retry_after=max(1, math.ceil(max(ttl_ms, 0) / 1000)),
    )


def failed(r: Redis, settings: Settings, client: str, target: str) -> None:
    """Count one failed authentication of `client` against `target`."""
    window = max(1, math.ceil(settings.auth_failure_window))
    pipe = r.pipeline(transaction=False)
    for key, _ in counters(settings, client, target):
        pipe.set(key, 0, ex=window, nx=True)
        pipe.incr(key)
    pipe.execute()
