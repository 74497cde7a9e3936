"""Per-channel rate limiting: a token bucket in Redis, shared by every web process, which
each takes its tokens from a few at a time (a lease, `RATE_LIMIT_LEASE_*` in defaults)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from broker.channels.channel import Channel
from broker.core import keys, scripts
from broker.core.connection import Redis
from broker.core.defaults import (
    RATE_LIMIT_LEASE_MAX,
    RATE_LIMIT_LEASE_SECONDS,
    RATE_LIMIT_LEASE_SHARE,
)
from broker.core.errors import RateLimited
from broker.core.settings import Settings


def limits(settings: Settings, channel: Channel) -> tuple[float, float]:
    """The channel's rate (messages/s) and burst: its own rate, with a burst in the same
    proportion as the defaults', or the defaults."""
    default_rate, default_burst = settings.rate_limit_per_second, settings.rate_limit_burst
    if channel.rate_limit is None:
        return default_rate, default_burst
    ratio = default_burst / default_rate if default_rate > 0 else 2.0
    return channel.rate_limit, channel.rate_limit * ratio


def check(r: Redis, settings: Settings, channel: Channel) -> None:
    """Take a token from the channel's bucket; raise RateLimited when it is empty.

    A rate of 0 or less turns the limit off.
    """
    rate, burst = limits(settings, channel)
    if rate <= 0:
        return
    burst = max(burst, 1.0)
    if _LEASES.take(channel.id, rate, burst):
        return
    wanted = lease_size(rate, burst)
    granted, wait = scripts.run(
        r, "rate_limit", [keys.rate_limit(channel.id)], [rate, burst, wanted]
    )
    if not granted:
        raise RateLimited(
            f"this channel sends more than {rate:g} messages a second; retry in {wait} s",
            retry_after=int(wait),
        )
    _LEASES.keep(channel.id, rate, burst, int(granted) - 1)


def lease_size(rate: float, burst: float) -> int:
    """Tokens taken at once: one per RATE_LIMIT_LEASE_SHARE-th of the rate, never more than
    a small share of the burst, so that a channel near its limit is counted closely."""
    return max(1, min(RATE_LIMIT_LEASE_MAX, int(rate / RATE_LIMIT_LEASE_SHARE), int(burst / 10)))


@dataclass
class _Lease:
    tokens: int
    rate: float
    burst: float
    until: float


class _Leases:
    """The tokens this process took and has not spent yet, by channel."""

    def __init__(self) -> None:
        self._held: dict[str, _Lease] = {}
        self._lock = threading.Lock()

    def take(self, channel_id: str, rate: float, burst: float) -> bool:
        with self._lock:
            lease = self._held.get(channel_id)
            if lease is None or lease.tokens <= 0:
                return False
            if (lease.rate, lease.burst) != (rate, burst) or time.monotonic() > lease.until:
                del self._held[channel_id]  # a changed limit or an old lease: ask again
                return False
            lease.tokens -= 1
            return True

    def keep(self, channel_id: str, rate: float, burst: float, tokens: int) -> None:
        with self._lock:
            if tokens > 0:
                until = time.monotonic() + RATE_LIMIT_LEASE_SECONDS
                self._held[channel_id] = _Lease(tokens, rate, burst, until)
            else:
                self._held.pop(channel_id, None)


_LEASES = _Leases()
