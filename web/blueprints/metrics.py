"""`GET /metrics`: Prometheus's text format, or OpenMetrics for a scraper that asks for it
(docs/wire-contract.md §6).

Counters and histograms are every process's counts, added up in Redis
(`broker.core.metrics`), with the series of their closed label sets at 0 until counted;
gauges are read from the indexes when asked (`broker.overview`).
Open, unless SWITCHBOARD_METRICS_TOKEN is set: then only that bearer token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from broker import overview
from broker.core import metrics
from broker.core.connection import Redis
from broker.core.errors import Unauthorized
from broker.core.heartbeats import ROLES
from broker.core.settings import Settings
from broker.delivery import endpoint_store
from web.apidoc import Content, documented
from web.auth import bearer_token, throttled
from web.services import services

bp = Blueprint("metrics", __name__)

PROMETHEUS_TEXT = Content(CONTENT_TYPE_LATEST.split(";")[0], "Prometheus's text format")


class SwitchboardMetrics(Collector):
    """Every metric, read from Redis at each scrape. While events are `counting`, the known
    series (`metrics.known_series`) are there at 0 before their first event."""

    def __init__(
        self,
        counts: metrics.Counts,
        now: overview.Overview,
        *,
        counting: bool,
        per_channel: bool,
    ) -> None:
        self.counts = counts
        self.now = now
        self.counting = counting
        #: SWITCHBOARD_METRICS_PER_CHANNEL (`metrics.channel_label`).
        self.per_channel = per_channel

    def collect(self) -> Iterator[Metric]:
        yield from self._counted()
        yield from self._gauges()

    def _counted(self) -> Iterator[Metric]:
        for metric in metrics.ALL:
            known = (
                metrics.known_series(metric, per_channel=self.per_channel) if self.counting else []
            )
            if metric.kind == "counter":
                counter = CounterMetricFamily(metric.name, metric.help, labels=metric.labels)
                values = dict.fromkeys(known, 0.0) | self.counts.counters.get(metric.name, {})
                for labels, value in sorted(values.items()):
                    counter.add_metric(list(labels), value)
                yield counter
            else:
                histogram = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
                bounds = [*map(str, metric.buckets), "+Inf"]
                empty = metrics.Histogram([0] * len(bounds))
                series = dict.fromkeys(known, empty) | self.counts.histograms.get(metric.name, {})
                for labels, found in sorted(series.items()):
                    histogram.add_metric(
                        list(labels), list(zip(bounds, found.buckets, strict=True)), found.sum
                    )
                yield histogram

    def _gauges(self) -> Iterator[Metric]:
        now = self.now
        depth = GaugeMetricFamily(
            "switchboard_queue_depth",
            "Items waiting in each queue: "
            + "; ".join(f"{name}: {said}" for name, said in overview.QUEUES.items()),
            labels=["queue"],
        )
        for name, value in now.queues.items():
            depth.add_metric([name], value)
        yield depth
        age = GaugeMetricFamily(
            "switchboard_queue_oldest_age_seconds",
            "How long the oldest item ready for work has waited: the oldest user message "
            "waiting for a bot turn (inbound), the oldest delivery at the head of a queue "
            "that waits for no retry, open circuit or disabled endpoint (deliveries); 0 when "
            "none waits.",
            labels=["queue"],
        )
        for name, seconds in now.oldest_age.items():
            age.add_metric([name], seconds)
        yield age
        endpoints = GaugeMetricFamily(
            "switchboard_endpoints", "Endpoints by state.", labels=["state"]
        )
        for state, n in now.endpoints.items():
            endpoints.add_metric([state], n)
        yield endpoints
        yield GaugeMetricFamily(
            "switchboard_paused_conversations",
            "Conversations an agent has (the bot is paused for them).",
            value=now.paused_conversations,
        )
        alive = GaugeMetricFamily(
            "switchboard_processes_alive",
            "Workers and schedulers with a fresh heartbeat.",
            labels=["role"],
        )
        for role, found in zip(ROLES, (now.workers, now.schedulers), strict=True):
            alive.add_metric([role], len(found))
        yield alive
        if now.redis_memory is not None:
            memory = GaugeMetricFamily(
                "switchboard_redis_memory_bytes",
                "Redis's memory (summed over a cluster's masters): used, and its maxmemory (0: "
                "no limit). Past the limit Redis refuses writes and the ingress answers 503.",
                labels=["kind"],
            )
            memory.add_metric(["used"], now.redis_memory[0])
            memory.add_metric(["max"], now.redis_memory[1])
            yield memory


def _require_metrics_token() -> None:
    expected = services().settings.metrics_token
    if not expected:
        return
    # Throttled as the other tokens are: failures past a burst are answered 429.
    with throttled("metrics"):
        token = bearer_token()
        if token is None:
            raise Unauthorized("send the metrics token as 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(expected.encode(), token.encode()):
            raise Unauthorized("that metrics token is not valid")


def _encoder(accept: str) -> tuple[Callable[[CollectorRegistry], bytes], str]:
    """OpenMetrics when the scraper's Accept header asks for it, else the text format: also
    for a version prometheus-client cannot compare (`version=1.x` raises there)."""
    try:
        return choose_encoder(accept)
    except (TypeError, ValueError):
        return generate_latest, CONTENT_TYPE_PLAIN_0_0_4


def _channels_with_series(r: Redis, settings: Settings) -> set[str]:
    """The channels whose inbound messages have series of their own: every channel, or
    none when SWITCHBOARD_METRICS_PER_CHANNEL is off (those counted before it was turned
    off then go; their messages count under channel="all" from then on)."""
    return set(endpoint_store.all_ids(r)) if settings.metrics_per_channel else set()


@bp.get("/metrics")
@documented(
    "Prometheus metrics",
    auth="metrics",
    answers={200: PROMETHEUS_TEXT},
    errors=[401, 429],
    description="Inbound messages, bot turns, deliveries and attempts counted by every "
    "process; queue depths and ages, endpoints by state, paused conversations and live "
    "processes read from Redis at each scrape. OpenMetrics (`application/openmetrics-text`) "
    "when the Accept header asks for it.",
    tags=["health"],
)
def metrics_text() -> Response:
    _require_metrics_token()
    r = services().redis
    metrics.flush()  # this process's latest counts, so that a scrape sees its own
    counts = metrics.read(r)
    settings = services().settings
    metrics.forget_gone_channels(r, counts, _channels_with_series(r, settings))
    registry = CollectorRegistry(auto_describe=False)
    collector = SwitchboardMetrics(
        counts,
        overview.take(r),
        counting=settings.metrics,
        per_channel=settings.metrics_per_channel,
    )
    registry.register(collector)
    encode, content_type = _encoder(request.headers.get("Accept", ""))
    return Response(encode(registry), content_type=content_type)
