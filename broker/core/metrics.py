"""What Switchboard counts for /metrics, and how every process's counts are added up.

Events happen in many processes, on many machines: the web processes (gunicorn workers)
take messages in, the Celery workers run bot turns and deliveries. Each counts what it
sees in memory (`count`, `observe`), and a thread adds it to one Redis hash,
`sb:metrics`, every `METRICS_FLUSH_INTERVAL` (1 s), in one pipelined round trip. Any web
process's /metrics then reads the sum of all of them (`read`). A process killed outright
loses at most its last second of counts; Prometheus takes the counters as they are.

Why not prometheus-client's multiprocess mode: it adds up the processes of one machine
that share a folder, and Switchboard's workers and schedulers run on other machines than
the web process that answers /metrics (Celery workers serve no HTTP to scrape). Redis is
the one thing every process shares.

Gauges (queue depths, endpoints by state, workers alive) are not counted here: they are
read from the indexes when asked (`broker.overview`).
"""

from __future__ import annotations

import atexit
import functools
import itertools
import json
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from broker.core import keys, logs
from broker.core.connection import SHORT_HERE, Redis, unavailable_reason
from broker.core.defaults import METRICS_FLUSH_INTERVAL
from broker.core.settings import Settings

log = logging.getLogger(__name__)
#: Says when Redis answers again after the trouble logged here.
redis_outage = logs.RedisOutage(log)

#: Seconds: from a few ms (a Redis round trip) to the 10 s an attempt may take by default.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Seconds from a message's arrival to its reply's delivery: retries make it long.
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True, eq=False)
class Metric:
    """A counter or a histogram; its exposed name is `name` (with `_total` for a counter).

    Each is one of the constants below, so it is known by identity: a hash of its fields
    on every count cost more than the count itself."""

    name: str
    help: str
    kind: Literal["counter", "histogram"]
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    #: The values each label takes, when every label's are a closed set (outcomes, endpoint
    #: kinds; () for no label); None when a label's are open (channel ids). See
    #: `known_series`.
    label_values: tuple[tuple[str, ...], ...] | None = ()

    def __post_init__(self) -> None:
        if self.label_values is not None and len(self.label_values) != len(self.labels):
            raise ValueError(f"{self.name}: the values of each label, or None")


#: The values of the `endpoint_kind` label (`attempt_log.endpoint_kind`).
ENDPOINT_KINDS = ("channel", "offloading")
#: The channel label of inbound messages whose channel was not authenticated.
UNKNOWN_CHANNEL = "unknown"
#: The channel label of every channel's inbound messages when
#: SWITCHBOARD_METRICS_PER_CHANNEL is off.
ALL_CHANNELS = "all"
#: The outcomes of inbound messages (`web.inbound_counts`).
INBOUND_OUTCOMES = (
    "queued",
    "duplicate",
    "unauthorized",
    "invalid",
    "rate_limited",
    "unknown_channel",
    "error",
)
INBOUND_MESSAGES = Metric(
    "switchboard_inbound_messages",
    "Inbound messages by channel and outcome: queued, duplicate (an idempotency key seen "
    "before), unauthorized, invalid, rate_limited, unknown_channel, error.",
    "counter",
    ("channel", "outcome"),
    label_values=None,
)
BOT_TURNS = Metric(
    "switchboard_bot_turns",
    "Bot turns by outcome: ok, error (the turn raised; it is tried again), or put_off (it "
    "was about to wait outside while too many turns did: its conversation comes back soon).",
    "counter",
    ("outcome",),
    label_values=(("ok", "error", "put_off"),),
)
BOT_TURN_MESSAGES = Metric(
    "switchboard_bot_turn_messages", "User messages that bot turns processed.", "counter"
)
BOT_TURN_DURATION = Metric(
    "switchboard_bot_turn_duration_seconds",
    "How long a bot turn took, from taking its conversation to letting go.",
    "histogram",
    buckets=_DURATION_BUCKETS,
)
DELIVERY_ATTEMPTS = Metric(
    "switchboard_delivery_attempts",
    "Delivery attempts by endpoint kind (channel, offloading) and outcome (success, failure, "
    "not_sent: used up while the endpoint's circuit breaker was open).",
    "counter",
    ("endpoint_kind", "outcome"),
    label_values=(ENDPOINT_KINDS, ("success", "failure", "not_sent")),
)
DELIVERIES = Metric(
    "switchboard_deliveries",
    "Deliveries that ended, by endpoint kind and outcome: delivered, or dead (dead-lettered).",
    "counter",
    ("endpoint_kind", "outcome"),
    label_values=(ENDPOINT_KINDS, ("delivered", "dead")),
)
ATTEMPT_DURATION = Metric(
    "switchboard_delivery_attempt_duration_seconds",
    "How long one delivery attempt took, by endpoint kind.",
    "histogram",
    ("endpoint_kind",),
    _DURATION_BUCKETS,
    label_values=(ENDPOINT_KINDS,),
)
DELIVERY_LATENCY = Metric(
    "switchboard_delivery_latency_seconds",
    "From the user message's arrival at the ingress to the delivery of the reply it caused "
    "(for agents' messages and timers, from when they were sent), by endpoint kind.",
    "histogram",
    ("endpoint_kind",),
    _LATENCY_BUCKETS,
    label_values=(ENDPOINT_KINDS,),
)

ALL: tuple[Metric, ...] = (
    INBOUND_MESSAGES,
    BOT_TURNS,
    BOT_TURN_MESSAGES,
    BOT_TURN_DURATION,
    DELIVERY_ATTEMPTS,
    DELIVERIES,
    ATTEMPT_DURATION,
    DELIVERY_LATENCY,
)
_BY_NAME = {metric.name: metric for metric in ALL}


def known_series(metric: Metric, *, per_channel: bool) -> list[tuple[str, ...]]:
    """The label values of every series `metric` has before anything is counted: each
    combination of its labels' closed sets (the one series of a metric without labels);
    none when a label is open. Exposed at 0 from the first scrape, because Prometheus's
    `increase()` needs a sample before the first event to count it. Without `per_channel`
    (`channel_label`), the inbound messages' channels are a closed set too."""
    label_values = metric.label_values
    if metric is INBOUND_MESSAGES and not per_channel:
        label_values = ((ALL_CHANNELS, UNKNOWN_CHANNEL), INBOUND_OUTCOMES)
    if label_values is None:
        return []
    return list(itertools.product(*label_values))


def channel_label(channel: str, *, per_channel: bool) -> str:
    """The channel label of an inbound message from `channel` (an id, or UNKNOWN_CHANNEL):
    the id itself, or ALL_CHANNELS without `per_channel` (SWITCHBOARD_METRICS_PER_CHANNEL),
    which spares Prometheus up to 7 series a channel."""
    return channel if per_channel or channel == UNKNOWN_CHANNEL else ALL_CHANNELS


@functools.lru_cache(maxsize=4096)
def _field(metric: Metric, labels: tuple[str, ...], part: str) -> str:
    """The Redis hash field of one series (and, for a histogram, one part of it)."""
    return json.dumps([metric.name, list(labels), part], separators=(",", ":"))


def _bucket(metric: Metric, value: float) -> str:
    """The index of the first bucket that holds `value` ("inf" past the last)."""
    for i, bound in enumerate(metric.buckets):
        if value <= bound:
            return str(i)
    return "inf"


class _Recorder:
    """This process's counts since its last flush, and the thread that flushes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Held for a whole flush, Redis round trip included: a flush that returns has put
        #: every count made before it in Redis, even those another thread was sending.
        self._flushing = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._sums: defaultdict[str, float] = defaultdict(float)
        self._redis: Redis | None = None
        self._pid = 0
        #: Which flushing thread is this process's current one; older ones stop.
        self._generation = 0

    def start(self, r: Redis) -> None:
        with self._lock:
            # Counts made for another Redis (in tests, another database) are not this one's.
            self._counts.clear()
            self._sums.clear()
            self._redis = r
            self._spawn()

    def stop(self) -> None:
        self.flush()
        with self._lock:
            self._redis = None
            self._generation += 1

    def _spawn(self) -> None:
        """Start the flushing thread of this process (again, after a fork)."""
        self._pid = os.getpid()
        self._generation += 1
        threading.Thread(
            target=self._loop, args=(self._generation,), name="metrics-flush", daemon=True
        ).start()

    def add(self, counts: Iterable[tuple[str, int]], sums: Iterable[tuple[str, float]]) -> None:
        with self._lock:
            if self._redis is None:
                return
            if self._pid != os.getpid():
                self._counts.clear()  # the parent's, which it flushes itself
                self._sums.clear()
                self._spawn()
            for name, n in counts:
                self._counts[name] += n
            for name, amount in sums:
                self._sums[name] += amount

    def flush(self) -> None:
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            r, counts, sums = self._redis, self._counts, self._sums
            if r is None or not (counts or sums):
                return
            self._counts, self._sums = Counter(), defaultdict(float)
        began = time.monotonic()
        try:
            # One key, so one transaction: it goes in whole or not at all.
            pipe = r.pipeline(transaction=True)
            for name, n in counts.items():
                pipe.hincrby(keys.METRICS, name, n)
            for name, amount in sums.items():
                pipe.hincrbyfloat(keys.METRICS, name, amount)
            pipe.execute()
            redis_outage.ended()
        except Exception as exc:  # the flushing thread must live on, whatever happens
            # Kept for the next flush: a Redis outage (or a client closed under us) loses
            # no count.
            log.warning("metrics not flushed, trying again: %s", exc)
            if unavailable_reason(exc) != SHORT_HERE:  # else Redis itself was well
                redis_outage.began(since=began)
            with self._lock:
                self._counts.update(counts)
                for name, amount in sums.items():
                    self._sums[name] += amount

    def _loop(self, generation: int) -> None:
        while self._generation == generation and self._pid == os.getpid():
            time.sleep(METRICS_FLUSH_INTERVAL)
            self.flush()


_recorder = _Recorder()
atexit.register(_recorder.flush)


def start(r: Redis, settings: Settings) -> None:
    """Count this process's events from now on, and add them to `r` every second; nothing is
    counted when `settings.metrics` is off, or before this is called (unit tests)."""
    if settings.metrics:
        _recorder.start(r)
    else:
        _recorder.stop()


def flush() -> None:
    """Add what this process counted to Redis now."""
    _recorder.flush()


def count(metric: Metric, *labels: str, n: int = 1) -> None:
    _recorder.add([(_field(metric, labels, ""), n)], ())


def observe(metric: Metric, value: float, *labels: str) -> None:
    """One observation of a histogram (seconds)."""
    _recorder.add(
        [(_field(metric, labels, _bucket(metric, value)), 1), (_field(metric, labels, "count"), 1)],
        [(_field(metric, labels, "sum"), value)],
    )


@dataclass
class Histogram:
    """One histogram series as read back: cumulative bucket counts (the last is +Inf)."""

    buckets: list[int]
    sum: float = 0.0
    count: int = 0


@dataclass
class Counts:
    """Every process's counts, as read from Redis: series by metric name and label values."""

    counters: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)
    histograms: dict[str, dict[tuple[str, ...], Histogram]] = field(default_factory=dict)

    def total(self, metric: Metric, **labels: str) -> float:
        """A counter's sum over the series whose labels are those given."""
        wanted = [(metric.labels.index(name), value) for name, value in labels.items()]
        return sum(
            value
            for series, value in self.counters.get(metric.name, {}).items()
            if all(series[i] == v for i, v in wanted)
        )


def forget(r: Redis, label_value: str) -> None:
    """Drop every series that has `label_value` among its labels: those of a channel or
    endpoint that was removed, which would be exported for ever."""
    quoted = keys.glob_escaped(json.dumps(label_value))
    gone = []
    for series, _ in r.hscan_iter(keys.METRICS, match=f"*{quoted}*", count=1000):
        try:
            _, labels, _ = json.loads(series)
        except ValueError:
            continue
        if label_value in labels:
            gone.append(series)
    for start in range(0, len(gone), 500):
        r.hdel(keys.METRICS, *gone[start : start + 500])


def forget_gone_channels(r: Redis, counts: Counts, channels: set[str]) -> None:
    """Drop the inbound series of channels not in `channels` from `counts` and from Redis.
    Those of a removed channel were forgotten with it, but a process that counted one of
    its messages just before adds the series again at its next flush. `channels` must be
    read after `counts`: a channel made meanwhile has no series yet. With no `channels`,
    only the series of no channel's id are kept (`channel_label` without `per_channel`)."""
    series = counts.counters.get(INBOUND_MESSAGES.name, {})
    gone = [
        labels
        for labels in series
        if labels[0] not in (UNKNOWN_CHANNEL, ALL_CHANNELS) and labels[0] not in channels
    ]
    for labels in gone:
        del series[labels]
    fields = [_field(INBOUND_MESSAGES, labels, "") for labels in gone]
    for start in range(0, len(fields), 500):
        r.hdel(keys.METRICS, *fields[start : start + 500])


def read(r: Redis) -> Counts:
    """What every process has counted so far (and flushed)."""
    counts = Counts()
    raw_histograms: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}
    for raw_field, value in r.hgetall(keys.METRICS).items():
        try:
            name, labels, part = json.loads(raw_field)
            metric = _BY_NAME[name]
        except (ValueError, KeyError):
            continue  # a metric of another version
        series = tuple(labels)
        if metric.kind == "counter":
            counts.counters.setdefault(name, {})[series] = float(value)
        else:
            raw_histograms.setdefault((name, series), {})[part] = value
    for (name, series), parts in raw_histograms.items():
        metric = _BY_NAME[name]
        cumulative, running = [], 0
        for i in [*map(str, range(len(metric.buckets))), "inf"]:
            running += int(parts.get(i, 0))
            cumulative.append(running)
        counts.histograms.setdefault(name, {})[series] = Histogram(
            cumulative, float(parts.get("sum", 0)), int(parts.get("count", 0))
        )
    return counts
