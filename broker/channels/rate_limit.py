"""Per-channel rate limiting: a token bucket in Redis, shared by every web process."""

from __future__ import annotations

from broker.core import keys, scripts
from broker.core.connection import Redis
from broker.core.errors import RateLimited
from broker.core.settings import Settings


def check(r: Redis, settings: Settings, channel_id: str) -> None:
    """Take a token from the channel's bucket; raise RateLimited when it is empty.

    A rate of 0 or less turns the limit off.
    """
    rate = settings.rate_limit_per_second
    if rate <= 0:
        return
    burst = max(settings.rate_limit_burst, 1.0)
    allowed, wait = scripts.run(r, "rate_limit", [keys.rate_limit(channel_id)], [rate, burst])
    if not allowed:
        raise RateLimited(
            f"this channel sends more than {rate:g} messages a second; retry in {wait} s",
            retry_after=int(wait),
        )
