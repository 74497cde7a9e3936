"""One settings object, read from the environment once per process."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar, get_type_hints
from urllib.parse import urlsplit

from broker.core import defaults
from broker.core.connection import CLUSTER_SCHEMES, SENTINEL_SCHEMES, check_url, is_cluster
from broker.core.errors import ConfigError
from broker.core.redaction import redact

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
S = TypeVar("S", bound=Sequence[float])


#: The largest number a setting takes (about 31 years in seconds): Redis refuses times to
#: live far past it, which would fail every message rather than the start.
_LARGEST = 1_000_000_000


def _seconds(text: str) -> float:
    number = float(text)
    if not (math.isfinite(number) and 0 <= number <= _LARGEST):
        raise ValueError(text)
    return number


#: What Celery's transport may be: RabbitMQ, or a Redis (a cluster is refused on its own).
_BROKER_SCHEMES = (
    "amqp://",
    "amqps://",
    "pyamqp://",
    "redis://",
    "rediss://",
    "unix://",
    *SENTINEL_SCHEMES,
    *CLUSTER_SCHEMES,
)

#: RabbitMQ's schemes among them.
_AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")

#: Counts of which 0 would leave work undone (no turn runner, no delivery) or refuse all.
_AT_LEAST_ONE = (
    "delivery_concurrency",
    "endpoint_concurrency",
    "turn_runners",
    "turn_runners_away",
    "turn_attempts",
    "circuit_threshold",
    "max_body_bytes",
)

#: Seconds that must be more than 0: a lease or a time limit of 0 would end every claim or
#: attempt at once, an interval of 0 would spin, a retention of 0 would drop what it keeps.
_MORE_THAN_ZERO = (
    "claim_lease",
    "scheduler_interval",
    "connect_timeout",
    "total_timeout",
    "log_retention",
    "dead_retention",
    "conversation_ttl",
    # WAIT's timeout of 0 waits for ever.
    "ingress_replica_wait",
    "web_redis_timeout",
)


def _base_url(text: str) -> bool:
    """An http(s) URL with a host and a port that is one, and nothing that could not go
    before a path: no credentials, query or fragment, no spaces around it."""
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 (it raises for a port that is not a number from 0 to 65535)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not (parts.username or parts.password or parts.query or parts.fragment)
        and text == text.strip()
    )


def _count(text: str) -> int:
    number = int(text)
    if number < 0:
        raise ValueError(text)
    return number


def parse_schedule(text: str) -> tuple[float, ...]:
    """Parse comma-separated seconds, such as "0,5,30"; ValueError if it is not that."""
    schedule = tuple(_seconds(part) for part in text.split(",") if part.strip())
    if not schedule:
        raise ValueError(text)
    return starts_at_once(schedule)


def starts_at_once(schedule: S) -> S:
    """`schedule`, a retry schedule, whose first value is the first attempt's: 0, as a
    delivery's first attempt goes out at once (ValueError otherwise)."""
    if schedule and schedule[0] != 0:
        raise ValueError(
            "a retry schedule starts with 0: its first value is the first attempt's, "
            "which goes out at once"
        )
    return schedule


def rate_or_off(rate: float | None) -> float | None:
    """`rate`, a rate limit (messages/s): 0 (no limit) or at least RATE_LIMIT_MIN
    (ValueError otherwise)."""
    if rate is not None and 0 < rate < defaults.RATE_LIMIT_MIN:
        raise ValueError(
            f"a rate limit is 0 (no limit) or at least {defaults.RATE_LIMIT_MIN} messages/s"
        )
    return rate


def parse_allowlist(text: str) -> tuple[Network, ...]:
    """Parse comma-separated CIDRs, such as "127.0.0.0/8,::1/128"; ValueError if it is not that."""
    parts = (part.strip() for part in text.split(","))
    return tuple(ipaddress.ip_network(part, strict=False) for part in parts if part)


_FLAGS = {"1": True, "true": True, "on": True, "yes": True}
_FLAGS |= {"0": False, "false": False, "off": False, "no": False}


def _flag(text: str) -> bool:
    try:
        return _FLAGS[text.strip().lower()]
    except KeyError:
        raise ValueError(text) from None


#: How a variable becomes a setting of each type, and what it must hold.
_PARSERS: dict[object, tuple[Callable[[str], object], str]] = {
    str: (str, "text"),
    bool: (_flag, "1 or 0 (true or false, on or off, yes or no)"),
    float: (_seconds, f"a number from 0 to {_LARGEST}"),
    int: (_count, "a whole number of 0 or more"),
    tuple[float, ...]: (
        parse_schedule,
        "seconds of 0 or more separated by commas, the first 0, such as '0,5,30'",
    ),
    tuple[Network, ...]: (
        parse_allowlist,
        "networks separated by commas, such as '127.0.0.0/8,::1/128'",
    ),
}

#: The settings whose variable is not SWITCHBOARD_ and their name in capitals.
_VARIABLES = {"redis_url": "REDIS_URL", "rate_limit_per_second": "SWITCHBOARD_RATE_LIMIT"}


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    """Every tunable of Switchboard. Build it with `Settings.from_env()`, which reads each
    from its variable (SWITCHBOARD_<NAME> but for `_VARIABLES`); its default is the one of
    `broker.core.defaults`."""

    redis_url: str = defaults.REDIS_URL
    #: Celery's broker; the data's Redis unless told otherwise.
    broker_url: str = ""
    sentinel_master: str = defaults.SENTINEL_MASTER
    admin_token: str = ""
    metrics_token: str = ""
    #: Without a trailing slash.
    public_url: str = defaults.PUBLIC_URL
    outbound_allowlist: tuple[Network, ...] = ()
    #: Proxies whose `X-Forwarded-For` names the client (web/client_address.py).
    trusted_proxies: tuple[Network, ...] = ()
    retry_schedule: tuple[float, ...] = defaults.RETRY_SCHEDULE
    retry_jitter: float = defaults.RETRY_JITTER
    retry_after_cap: float = defaults.RETRY_AFTER_CAP
    connect_timeout: float = defaults.CONNECT_TIMEOUT
    total_timeout: float = defaults.TOTAL_TIMEOUT
    disable_after: float = defaults.DISABLE_AFTER
    circuit_threshold: int = defaults.CIRCUIT_THRESHOLD
    circuit_cooldown: float = defaults.CIRCUIT_COOLDOWN
    circuit_cooldown_max: float = defaults.CIRCUIT_COOLDOWN_MAX
    log_retention: float = defaults.LOG_RETENTION
    dead_retention: float = defaults.DEAD_RETENTION
    claim_lease: float = defaults.CLAIM_LEASE
    shutdown_grace: float = defaults.SHUTDOWN_GRACE
    scheduler_interval: float = defaults.SCHEDULER_INTERVAL
    delivery_concurrency: int = defaults.DELIVERY_CONCURRENCY
    endpoint_concurrency: int = defaults.ENDPOINT_CONCURRENCY
    turn_runners: int = defaults.TURN_RUNNERS
    turn_runners_away: int = defaults.TURN_RUNNERS_AWAY
    max_body_bytes: int = defaults.MAX_BODY_BYTES
    #: Replicas that must have a message before it is acknowledged (0: none), and how long
    #: the ingress waits for them.
    ingress_replicas: int = defaults.INGRESS_REPLICAS
    ingress_replica_wait: float = defaults.INGRESS_REPLICA_WAIT
    #: How long a web process waits for Redis to connect or answer a command (see
    #: `web_redis_wait`).
    web_redis_timeout: float = defaults.WEB_REDIS_TIMEOUT
    offload_timeout: float = defaults.OFFLOAD_TIMEOUT
    resume_after: float = defaults.RESUME_AFTER
    rate_limit_per_second: float = defaults.RATE_LIMIT_PER_SECOND
    rate_limit_burst: float = defaults.RATE_LIMIT_BURST
    action_modules: str = defaults.ACTION_MODULES
    #: Count events for /metrics and the dashboard.
    metrics: bool = defaults.METRICS
    #: Label inbound messages' series with their channel's id (else channel="all").
    metrics_per_channel: bool = defaults.METRICS_PER_CHANNEL
    #: "json" (one object a line) or "text".
    log_format: str = defaults.LOG_FORMAT
    #: DEBUG, INFO, WARNING, ERROR or CRITICAL, in any case.
    log_level: str = defaults.LOG_LEVEL
    session_data_keys: int = defaults.SESSION_DATA_KEYS
    session_data_bytes: int = defaults.SESSION_DATA_BYTES
    conversation_data_keys: int = defaults.CONVERSATION_DATA_KEYS
    conversation_data_bytes: int = defaults.CONVERSATION_DATA_BYTES
    conversation_variables_bytes: int = defaults.CONVERSATION_VARIABLES_BYTES
    transcript_bytes: int = defaults.TRANSCRIPT_BYTES
    conversation_ttl: float = defaults.CONVERSATION_TTL
    turn_attempts: int = defaults.TURN_ATTEMPTS
    turn_retry_delay: float = defaults.TURN_RETRY_DELAY
    auth_failures: int = defaults.AUTH_FAILURES
    auth_failures_per_target: int = defaults.AUTH_FAILURES_PER_TARGET
    auth_failure_window: float = defaults.AUTH_FAILURE_WINDOW

    @property
    def web_redis_wait(self) -> float:
        """How long a web process waits for Redis: `web_redis_timeout`, and with ingress
        replicas a second longer than the wait for them at least, since the answer to the
        ingress's WAIT comes only then."""
        if self.ingress_replicas:
            return max(self.web_redis_timeout, self.ingress_replica_wait + 1.0)
        return self.web_redis_timeout

    def __post_init__(self) -> None:
        if is_cluster(self.redis_url) and not self.broker_url:
            raise ConfigError(
                "SWITCHBOARD_BROKER_URL must be set with a Redis Cluster (Celery's Redis "
                "transport does not speak Cluster): RabbitMQ (amqp://...) or another Redis"
            )
        if self.broker_url and not self.broker_url.startswith(_BROKER_SCHEMES):
            raise ConfigError(
                "SWITCHBOARD_BROKER_URL must be RabbitMQ's (amqp://, amqps://) or a Redis URL "
                f"(redis://, rediss://, unix://, a Sentinel URL), not {redact(self.broker_url)!r}"
            )
        if is_cluster(self.broker_url):
            raise ConfigError(
                "SWITCHBOARD_BROKER_URL cannot be a Redis Cluster: use RabbitMQ (amqp://...) "
                "or a single Redis"
            )
        if self.broker_url:
            _check_broker_url(self.broker_url)
        if is_cluster(self.redis_url) and self.ingress_replicas:
            raise ConfigError(
                "SWITCHBOARD_INGRESS_REPLICAS must be 0 with a Redis Cluster: WAIT names no "
                "key, so the cluster client cannot send it to the master that took the message"
            )
        for name in _AT_LEAST_ONE:
            if getattr(self, name) < 1:
                raise ConfigError(f"SWITCHBOARD_{name.upper()} must be 1 or more")
        for name in _MORE_THAN_ZERO:
            if not getattr(self, name) > 0:
                raise ConfigError(f"SWITCHBOARD_{name.upper()} must be more than 0 seconds")
        if not 0 <= self.retry_jitter < 1:
            # A delay moves by up to this fraction of itself either way: 1 or more could
            # make it 0 or less.
            raise ConfigError(
                "SWITCHBOARD_RETRY_JITTER must be a fraction from 0 up to, not including, 1, "
                f"not {self.retry_jitter:g}"
            )
        if not _base_url(self.public_url):
            raise ConfigError(
                "SWITCHBOARD_PUBLIC_URL must be an http:// or https:// URL with a host and no "
                "credentials, query or fragment, "
                f"not {redact(self.public_url)!r}"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(f"SWITCHBOARD_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        object.__setattr__(self, "log_level", self.log_level.upper())
        object.__setattr__(self, "broker_url", self.broker_url or self.redis_url)
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of `env` (default: the process's); an empty variable is an unset one."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, kind in get_type_hints(cls).items():
            variable = _VARIABLES.get(name, f"SWITCHBOARD_{name.upper()}")
            if text := env.get(variable):
                parse, expected = _PARSERS[kind]
                try:
                    values[name] = parse(text)
                except ValueError:
                    raise ConfigError(f"{variable} must be {expected}, not {text!r}") from None
        return cls(**values)

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _check_broker_url(url: str) -> None:
    """ConfigError when Celery could not use `url` as it is written (a port that is no number,
    no host): a Redis URL is checked as REDIS_URL is, RabbitMQ's for its host and port."""
    if not url.startswith(_AMQP_SCHEMES):
        check_url(url, "SWITCHBOARD_BROKER_URL")
        return
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (reading it checks it)
    except ValueError as exc:
        raise ConfigError(f"SWITCHBOARD_BROKER_URL names no usable port: {exc}") from None
    if not parts.hostname:
        raise ConfigError(
            "SWITCHBOARD_BROKER_URL names no host: amqp://user:password@host:5672/vhost"
        )
