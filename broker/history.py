"""The last hour of the deployment, for the dashboard's charts: a sample of the overview and
the counters every `METRICS_SAMPLE_INTERVAL` (10 s), taken by a scheduler.

Samples sit on `sb:metrics:history` by time; whoever adds one trims those older than
`METRICS_HISTORY`. With several schedulers, the first to claim a sample's slot takes it.
The dashboard reads the samples (one `ZRANGEBYSCORE`), however many people watch it.
"""

from __future__ import annotations

import json
from typing import Any

from broker import overview
from broker.core import clock, keys, metrics
from broker.core.connection import Redis
from broker.core.defaults import METRICS_HISTORY, METRICS_SAMPLE_INTERVAL

#: The counters a sample keeps (running totals; the charts show their rates).
COUNTERS: dict[str, tuple[metrics.Metric, dict[str, str]]] = {
    "inbound": (metrics.INBOUND_MESSAGES, {"outcome": "queued"}),
    "turnMessages": (metrics.BOT_TURN_MESSAGES, {}),
    "delivered": (metrics.DELIVERIES, {"outcome": "delivered"}),
    "dead": (metrics.DELIVERIES, {"outcome": "dead"}),
    "failedAttempts": (metrics.DELIVERY_ATTEMPTS, {"outcome": "failure"}),
}


def sample(r: Redis) -> bool:
    """Take this interval's sample, unless another scheduler has; True if taken."""
    now = clock.now()
    if not r.set(keys.METRICS_SAMPLING, 1, nx=True, px=int(METRICS_SAMPLE_INTERVAL * 900)):
        return False
    point = take_point(r, overview.take(r))
    pipe = r.pipeline(transaction=False)
    pipe.zadd(keys.METRICS_HISTORY, {json.dumps(point, separators=(",", ":")): point["at"]})
    pipe.zremrangebyscore(keys.METRICS_HISTORY, "-inf", clock.ms(now - METRICS_HISTORY))
    pipe.execute()
    return True


def take_point(r: Redis, found: overview.Overview) -> dict[str, Any]:
    """A sample: the queues' depths of an overview, and the counters' totals now."""
    counts = metrics.read(r)
    return {
        "at": clock.ms(found.at),
        "queues": found.queues,
        "counters": {
            name: counts.total(metric, **labels) for name, (metric, labels) in COUNTERS.items()
        },
    }


def series(r: Redis, since_ms: int = 0) -> list[dict[str, Any]]:
    """The samples of the last hour (after `since_ms`), oldest first."""
    low = max(since_ms + 1, clock.ms(clock.now() - METRICS_HISTORY))
    return [json.loads(item) for item in r.zrangebyscore(keys.METRICS_HISTORY, low, "+inf")]
