"""Per-channel rate limiting: a token bucket in Redis, shared by every web process."""

from __future__ import annotations

from broker.channels.channel import Channel
from broker.core import keys, scripts
from broker.core.connection import Redis
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
    allowed, wait = scripts.run(r, "rate_limit", [keys.rate_limit(channel.id)], [rate, burst])
    if not allowed:
        raise RateLimited(
            f"this channel sends more than {rate:g} messages a second; retry in {wait} s",
            retry_after=int(wait),
        )
