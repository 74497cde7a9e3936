"""One settings object, read from the environment once per process."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from broker.core import defaults
from broker.core.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_schedule(text: str) -> tuple[float, ...]:
    """Parse a comma-separated list of seconds, such as "0,5,30"."""
    try:
        schedule = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"a retry schedule is seconds separated by commas, not {text!r}") from exc
    if not schedule or any(delay < 0 for delay in schedule):
        raise ConfigError(f"a retry schedule needs one or more delays of 0 or more: {text!r}")
    return schedule


def parse_allowlist(text: str) -> tuple[Network, ...]:
    """Parse comma-separated CIDRs, such as "127.0.0.0/8,::1/128"."""
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in text.split(",")
            if part.strip()
        )
    except ValueError as exc:
        raise ConfigError(f"SWITCHBOARD_OUTBOUND_ALLOWLIST holds a bad network: {exc}") from exc


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Every tunable of Switchboard. Build it with `Settings.from_env()`."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Celery's broker; the data's Redis unless told otherwise.
    broker_url: str = ""
    admin_token: str = ""
    public_url: str = "http://127.0.0.1:8080"
    outbound_allowlist: tuple[Network, ...] = ()
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
    scheduler_interval: float = defaults.SCHEDULER_INTERVAL
    delivery_concurrency: int = defaults.DELIVERY_CONCURRENCY
    endpoint_concurrency: int = defaults.ENDPOINT_CONCURRENCY
    max_body_bytes: int = defaults.MAX_BODY_BYTES
    offload_timeout: float = defaults.OFFLOAD_TIMEOUT
    resume_after: float = defaults.RESUME_AFTER
    rate_limit_per_second: float = defaults.RATE_LIMIT_PER_SECOND
    rate_limit_burst: float = defaults.RATE_LIMIT_BURST
    metrics_token: str = ""
    sentinel_master: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.broker_url:
            object.__setattr__(self, "broker_url", self.redis_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        redis_url = env.get("REDIS_URL") or cls.redis_url
        schedule = env.get("SWITCHBOARD_RETRY_SCHEDULE")
        return cls(
            redis_url=redis_url,
            broker_url=env.get("SWITCHBOARD_BROKER_URL") or redis_url,
            admin_token=env.get("SWITCHBOARD_ADMIN_TOKEN", ""),
            public_url=(env.get("SWITCHBOARD_PUBLIC_URL") or cls.public_url).rstrip("/"),
            outbound_allowlist=parse_allowlist(env.get("SWITCHBOARD_OUTBOUND_ALLOWLIST", "")),
            retry_schedule=parse_schedule(schedule) if schedule else defaults.RETRY_SCHEDULE,
            retry_jitter=_number(env, "SWITCHBOARD_RETRY_JITTER", defaults.RETRY_JITTER),
            retry_after_cap=_number(env, "SWITCHBOARD_RETRY_AFTER_CAP", defaults.RETRY_AFTER_CAP),
            connect_timeout=_number(env, "SWITCHBOARD_CONNECT_TIMEOUT", defaults.CONNECT_TIMEOUT),
            total_timeout=_number(env, "SWITCHBOARD_TOTAL_TIMEOUT", defaults.TOTAL_TIMEOUT),
            disable_after=_number(env, "SWITCHBOARD_DISABLE_AFTER", defaults.DISABLE_AFTER),
            circuit_threshold=int(
                _number(env, "SWITCHBOARD_CIRCUIT_THRESHOLD", defaults.CIRCUIT_THRESHOLD)
            ),
            circuit_cooldown=_number(
                env, "SWITCHBOARD_CIRCUIT_COOLDOWN", defaults.CIRCUIT_COOLDOWN
            ),
            circuit_cooldown_max=_number(
                env, "SWITCHBOARD_CIRCUIT_COOLDOWN_MAX", defaults.CIRCUIT_COOLDOWN_MAX
            ),
            log_retention=_number(env, "SWITCHBOARD_LOG_RETENTION", defaults.LOG_RETENTION),
            dead_retention=_number(env, "SWITCHBOARD_DEAD_RETENTION", defaults.DEAD_RETENTION),
            claim_lease=_number(env, "SWITCHBOARD_CLAIM_LEASE", defaults.CLAIM_LEASE),
            scheduler_interval=_number(
                env, "SWITCHBOARD_SCHEDULER_INTERVAL", defaults.SCHEDULER_INTERVAL
            ),
            delivery_concurrency=int(
                _number(env, "SWITCHBOARD_DELIVERY_CONCURRENCY", defaults.DELIVERY_CONCURRENCY)
            ),
            endpoint_concurrency=int(
                _number(env, "SWITCHBOARD_ENDPOINT_CONCURRENCY", defaults.ENDPOINT_CONCURRENCY)
            ),
            max_body_bytes=int(_number(env, "SWITCHBOARD_MAX_BODY_BYTES", defaults.MAX_BODY_BYTES)),
            offload_timeout=_number(env, "SWITCHBOARD_OFFLOAD_TIMEOUT", defaults.OFFLOAD_TIMEOUT),
            resume_after=_number(env, "SWITCHBOARD_RESUME_AFTER", defaults.RESUME_AFTER),
            rate_limit_per_second=_number(
                env, "SWITCHBOARD_RATE_LIMIT", defaults.RATE_LIMIT_PER_SECOND
            ),
            rate_limit_burst=_number(
                env, "SWITCHBOARD_RATE_LIMIT_BURST", defaults.RATE_LIMIT_BURST
            ),
            metrics_token=env.get("SWITCHBOARD_METRICS_TOKEN", ""),
            sentinel_master=env.get("SWITCHBOARD_SENTINEL_MASTER", "mymaster"),
        )

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
