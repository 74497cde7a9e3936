"""Settings from the environment: every variable, its default, and the error of a bad value."""

from __future__ import annotations

import dataclasses
from ipaddress import ip_network
from pathlib import Path

import pytest

from broker.core import defaults
from broker.core.errors import ConfigError
from broker.core.settings import Settings

#: Every variable that settings read: the field it sets, a value, and what that value gives.
READS: list[tuple[str, str, str, object]] = [
    ("REDIS_URL", "redis_url", "redis://cache:6380/2", "redis://cache:6380/2"),
    ("SWITCHBOARD_BROKER_URL", "broker_url", "redis://queue:6379/1", "redis://queue:6379/1"),
    ("SWITCHBOARD_SENTINEL_MASTER", "sentinel_master", "primary", "primary"),
    ("SWITCHBOARD_ADMIN_TOKEN", "admin_token", "s3cret", "s3cret"),
    ("SWITCHBOARD_METRICS_TOKEN", "metrics_token", "m3trics", "m3trics"),
    ("SWITCHBOARD_PUBLIC_URL", "public_url", "https://sb.example/", "https://sb.example"),
    (
        "SWITCHBOARD_OUTBOUND_ALLOWLIST",
        "outbound_allowlist",
        "10.1.2.3/8, ::1/128,",
        (ip_network("10.0.0.0/8"), ip_network("::1/128")),
    ),
    (
        "SWITCHBOARD_TRUSTED_PROXIES",
        "trusted_proxies",
        "10.203.77.5/32",
        (ip_network("10.203.77.5/32"),),
    ),
    ("SWITCHBOARD_RETRY_SCHEDULE", "retry_schedule", "0, 1.5,60,", (0.0, 1.5, 60.0)),
    ("SWITCHBOARD_RETRY_JITTER", "retry_jitter", "0", 0.0),
    ("SWITCHBOARD_RETRY_AFTER_CAP", "retry_after_cap", "120", 120.0),
    ("SWITCHBOARD_CONNECT_TIMEOUT", "connect_timeout", "1.5", 1.5),
    ("SWITCHBOARD_TOTAL_TIMEOUT", "total_timeout", "4", 4.0),
    ("SWITCHBOARD_DISABLE_AFTER", "disable_after", "3600", 3600.0),
    ("SWITCHBOARD_CIRCUIT_THRESHOLD", "circuit_threshold", "3", 3),
    ("SWITCHBOARD_CIRCUIT_COOLDOWN", "circuit_cooldown", "2.5", 2.5),
    ("SWITCHBOARD_CIRCUIT_COOLDOWN_MAX", "circuit_cooldown_max", "60", 60.0),
    ("SWITCHBOARD_LOG_RETENTION", "log_retention", "86400", 86400.0),
    ("SWITCHBOARD_DEAD_RETENTION", "dead_retention", "1e6", 1e6),
    ("SWITCHBOARD_CLAIM_LEASE", "claim_lease", "2", 2.0),
    ("SWITCHBOARD_SHUTDOWN_GRACE", "shutdown_grace", "3", 3.0),
    ("SWITCHBOARD_SCHEDULER_INTERVAL", "scheduler_interval", "0.05", 0.05),
    ("SWITCHBOARD_DELIVERY_CONCURRENCY", "delivery_concurrency", "16", 16),
    ("SWITCHBOARD_ENDPOINT_CONCURRENCY", "endpoint_concurrency", " 8 ", 8),
    ("SWITCHBOARD_TURN_RUNNERS", "turn_runners", "2", 2),
    ("SWITCHBOARD_TURN_RUNNERS_AWAY", "turn_runners_away", "16", 16),
    ("SWITCHBOARD_MAX_BODY_BYTES", "max_body_bytes", "2048", 2048),
    ("SWITCHBOARD_INGRESS_REPLICAS", "ingress_replicas", "1", 1),
    ("SWITCHBOARD_INGRESS_REPLICA_WAIT", "ingress_replica_wait", "0.25", 0.25),
    ("SWITCHBOARD_WEB_REDIS_TIMEOUT", "web_redis_timeout", "1.5", 1.5),
    ("SWITCHBOARD_OFFLOAD_TIMEOUT", "offload_timeout", "30", 30.0),
    ("SWITCHBOARD_RESUME_AFTER", "resume_after", "1.5", 1.5),
    ("SWITCHBOARD_RATE_LIMIT", "rate_limit_per_second", "0", 0.0),
    ("SWITCHBOARD_RATE_LIMIT_BURST", "rate_limit_burst", "50", 50.0),
    ("SWITCHBOARD_ACTION_MODULES", "action_modules", "shop.actions", "shop.actions"),
    ("SWITCHBOARD_METRICS", "metrics", "off", False),
    ("SWITCHBOARD_METRICS_PER_CHANNEL", "metrics_per_channel", "no", False),
    ("SWITCHBOARD_LOG_FORMAT", "log_format", "text", "text"),
    ("SWITCHBOARD_LOG_LEVEL", "log_level", "warning", "WARNING"),
    ("SWITCHBOARD_SESSION_DATA_KEYS", "session_data_keys", "10", 10),
    ("SWITCHBOARD_SESSION_DATA_BYTES", "session_data_bytes", "2048", 2048),
    ("SWITCHBOARD_CONVERSATION_DATA_KEYS", "conversation_data_keys", "20", 20),
    ("SWITCHBOARD_CONVERSATION_DATA_BYTES", "conversation_data_bytes", "4096", 4096),
    ("SWITCHBOARD_CONVERSATION_VARIABLES_BYTES", "conversation_variables_bytes", "8192", 8192),
    ("SWITCHBOARD_TRANSCRIPT_BYTES", "transcript_bytes", "65536", 65536),
    ("SWITCHBOARD_CONVERSATION_TTL", "conversation_ttl", "86400", 86400.0),
    ("SWITCHBOARD_TURN_ATTEMPTS", "turn_attempts", "5", 5),
    ("SWITCHBOARD_TURN_RETRY_DELAY", "turn_retry_delay", "0.5", 0.5),
    ("SWITCHBOARD_AUTH_FAILURES", "auth_failures", "5", 5),
    ("SWITCHBOARD_AUTH_FAILURES_PER_TARGET", "auth_failures_per_target", "50", 50),
    ("SWITCHBOARD_AUTH_FAILURE_WINDOW", "auth_failure_window", "10", 10.0),
]
VARIABLES = [name for name, *_ in READS]
NUMBERS = [name for name, _, _, value in READS if type(value) is float]
WHOLE_NUMBERS = [name for name, _, _, value in READS if type(value) is int]
#: Settings empty unless set (the broker then is the data's Redis), so not in `defaults`.
EMPTY_BY_DEFAULT = {
    "broker_url",
    "admin_token",
    "metrics_token",
    "outbound_allowlist",
    "trusted_proxies",
}


def test_every_setting_is_read_from_one_variable() -> None:
    assert sorted(field for _, field, *_ in READS) == sorted(
        field.name for field in dataclasses.fields(Settings)
    )
    assert len(set(VARIABLES)) == len(VARIABLES)


def test_every_variable_is_in_the_readme_s_environment_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("## Environment", 1)[1]
    for name in VARIABLES:
        assert f"`{name}`" in table


@pytest.mark.parametrize(("name", "field", "raw", "expected"), READS)
def test_each_variable_sets_its_setting(name: str, field: str, raw: str, expected: object) -> None:
    value = getattr(Settings.from_env({name: raw}), field)
    assert value == expected
    assert type(value) is type(expected)


def test_the_web_s_redis_wait_outlasts_the_wait_for_replicas() -> None:
    replicas = {"SWITCHBOARD_INGRESS_REPLICAS": "1", "SWITCHBOARD_INGRESS_REPLICA_WAIT": "3"}
    assert Settings.from_env(replicas).web_redis_wait == 4.0
    longer = {**replicas, "SWITCHBOARD_WEB_REDIS_TIMEOUT": "6"}
    assert Settings.from_env(longer).web_redis_wait == 6.0
    assert Settings.from_env({"SWITCHBOARD_INGRESS_REPLICA_WAIT": "3"}).web_redis_wait == 2.0


def test_no_variables_give_the_defaults_of_the_defaults_module() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    for field in dataclasses.fields(Settings):
        if field.name not in EMPTY_BY_DEFAULT:
            assert getattr(settings, field.name) == getattr(defaults, field.name.upper())
    assert (settings.admin_token, settings.metrics_token, settings.outbound_allowlist) == (
        "",
        "",
        (),
    )
    assert settings.broker_url == settings.redis_url == defaults.REDIS_URL


@pytest.mark.parametrize("name", VARIABLES)
def test_an_empty_variable_is_its_default(name: str) -> None:
    assert Settings.from_env({name: ""}) == Settings()


def test_other_variables_are_ignored() -> None:
    env = {"HOME": "/root", "SWITCHBOARD_NO_SUCH_THING": "x", "switchboard_claim_lease": "soon"}
    assert Settings.from_env(env) == Settings()


def test_without_a_mapping_the_process_environment_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_CLAIM_LEASE", "7")
    assert Settings.from_env().claim_lease == 7.0


def test_the_broker_is_the_data_s_redis_unless_told_otherwise() -> None:
    data, queue = "redis://data:6379/3", "redis://queue:6379/4"
    assert Settings.from_env({"REDIS_URL": data}).broker_url == data
    assert Settings(redis_url=data).broker_url == data
    both = Settings.from_env({"REDIS_URL": data, "SWITCHBOARD_BROKER_URL": queue})
    assert (both.redis_url, both.broker_url) == (data, queue)


def test_the_public_url_loses_its_trailing_slashes_however_it_is_given() -> None:
    assert Settings.from_env({"SWITCHBOARD_PUBLIC_URL": "http://x:1//"}).public_url == "http://x:1"
    assert Settings(public_url="https://sb.example/").public_url == "https://sb.example"


def test_settings_are_built_with_keywords_and_never_change() -> None:
    settings = Settings(claim_lease=5.0, retry_schedule=(0, 0.2))
    assert (settings.claim_lease, settings.retry_schedule) == (5.0, (0, 0.2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.claim_lease = 1.0  # type: ignore[misc]
    assert hash(settings) == hash(Settings(claim_lease=5.0, retry_schedule=(0, 0.2)))


def test_with_changes_gives_a_copy_with_those_changes() -> None:
    settings = Settings(admin_token="t")
    changed = settings.with_changes(resume_after=0.0, rate_limit_per_second=0)
    assert (changed.resume_after, changed.rate_limit_per_second) == (0.0, 0)
    assert changed.admin_token == "t"
    assert settings.resume_after == defaults.RESUME_AFTER
    with pytest.raises(TypeError):
        settings.with_changes(no_such_setting=1)


@pytest.mark.parametrize("raw", ["soon", "-1", "nan", "inf", "1,5", "1e300"])
@pytest.mark.parametrize("name", NUMBERS)
def test_a_number_that_is_not_one_of_0_or_more_is_a_config_error(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: raw})
    assert caught.value.message == f"{name} must be a number from 0 to 1000000000, not {raw!r}"


@pytest.mark.parametrize("raw", ["many", "-1", "2.5", "1e3"])
@pytest.mark.parametrize("name", WHOLE_NUMBERS)
def test_a_count_that_is_not_a_whole_number_of_0_or_more_is_a_config_error(
    name: str, raw: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: raw})
    assert caught.value.message == f"{name} must be a whole number of 0 or more, not {raw!r}"


@pytest.mark.parametrize(
    "name",
    [
        "SWITCHBOARD_TURN_RUNNERS",
        "SWITCHBOARD_TURN_RUNNERS_AWAY",
        "SWITCHBOARD_DELIVERY_CONCURRENCY",
        "SWITCHBOARD_ENDPOINT_CONCURRENCY",
        "SWITCHBOARD_TURN_ATTEMPTS",
        "SWITCHBOARD_CIRCUIT_THRESHOLD",
        "SWITCHBOARD_MAX_BODY_BYTES",
    ],
)
def test_a_count_that_would_leave_work_undone_must_be_1_or_more(name: str) -> None:
    """No turn runner, no delivery, every request refused: accepted messages would wait."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: "0"})
    assert caught.value.message == f"{name} must be 1 or more"
    assert Settings.from_env({name: "1"})


@pytest.mark.parametrize(
    "name",
    [
        "SWITCHBOARD_CLAIM_LEASE",
        "SWITCHBOARD_SCHEDULER_INTERVAL",
        "SWITCHBOARD_CONNECT_TIMEOUT",
        "SWITCHBOARD_TOTAL_TIMEOUT",
        "SWITCHBOARD_LOG_RETENTION",
        "SWITCHBOARD_DEAD_RETENTION",
        "SWITCHBOARD_CONVERSATION_TTL",
        "SWITCHBOARD_INGRESS_REPLICA_WAIT",
        "SWITCHBOARD_WEB_REDIS_TIMEOUT",
    ],
)
def test_seconds_that_would_end_spin_or_drop_everything_must_be_more_than_0(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: "0"})
    assert caught.value.message == f"{name} must be more than 0 seconds"
    assert Settings.from_env({name: "0.5"})


def test_waiting_for_replicas_is_refused_on_a_redis_cluster() -> None:
    """WAIT names no key: the cluster client cannot send it where the message went."""
    cluster = {
        "REDIS_URL": "redis+cluster://node1:6379/0",
        "SWITCHBOARD_BROKER_URL": "amqp://guest:guest@rabbit:5672//",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**cluster, "SWITCHBOARD_INGRESS_REPLICAS": "1"})
    assert caught.value.message.startswith(
        "SWITCHBOARD_INGRESS_REPLICAS must be 0 with a Redis Cluster"
    )
    assert Settings.from_env({**cluster, "SWITCHBOARD_INGRESS_REPLICAS": "0"})
    sentinel = "redis+sentinel://s1:26379,s2:26379/0"
    assert Settings.from_env({"REDIS_URL": sentinel, "SWITCHBOARD_INGRESS_REPLICAS": "2"})


@pytest.mark.parametrize(
    "raw",
    [
        "notaurl",
        "ftp://sb.example",
        "http://",
        "https:///path",
        "http://sb.example:99999",
        "http://sb.example:abc",
        "http://user:pw@sb.example",
        "http://sb.example/?x=1",
        "http://sb.example/#f",
        " http://sb.example",
    ],
)
def test_the_public_url_must_be_an_http_url_with_a_host(raw: str) -> None:
    with pytest.raises(ConfigError, match="SWITCHBOARD_PUBLIC_URL must be an http"):
        Settings.from_env({"SWITCHBOARD_PUBLIC_URL": raw})


@pytest.mark.parametrize("raw", ["notaurl", "http://user:secret@broker/", "memory://"])
def test_a_broker_url_that_is_neither_rabbitmq_nor_redis_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SWITCHBOARD_BROKER_URL": raw})
    assert caught.value.message.startswith("SWITCHBOARD_BROKER_URL must be RabbitMQ's")
    assert "secret" not in caught.value.message
    for fine in ("amqp://guest:guest@127.0.0.1:5672//", "redis://127.0.0.1:6379/1"):
        assert Settings.from_env({"SWITCHBOARD_BROKER_URL": fine}).broker_url == fine


@pytest.mark.parametrize(("raw", "expected"), [("1", True), (" Yes", True), ("FALSE", False)])
def test_a_flag_is_one_of_its_words(raw: str, expected: bool) -> None:
    assert Settings.from_env({"SWITCHBOARD_METRICS": raw}).metrics is expected


@pytest.mark.parametrize("raw", ["2", "enabled", "-"])
@pytest.mark.parametrize("name", ["SWITCHBOARD_METRICS", "SWITCHBOARD_METRICS_PER_CHANNEL"])
def test_a_flag_that_is_not_one_of_its_words_is_a_config_error(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: raw})
    assert caught.value.message == (
        f"{name} must be 1 or 0 (true or false, on or off, yes or no), not {raw!r}"
    )


@pytest.mark.parametrize("raw", ["0,5s,30", "0;5", "0,-5", "0,nan", " , ", "5,30,120"])
def test_a_bad_retry_schedule_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SWITCHBOARD_RETRY_SCHEDULE": raw})
    assert caught.value.message == (
        "SWITCHBOARD_RETRY_SCHEDULE must be seconds of 0 or more separated by commas, "
        f"the first 0, such as '0,5,30', not {raw!r}"
    )


@pytest.mark.parametrize("raw", ["10.0.0.0/33", "localhost", "10.0.0.0/8;::1/128"])
def test_a_bad_allowlist_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SWITCHBOARD_OUTBOUND_ALLOWLIST": raw})
    assert caught.value.message == (
        "SWITCHBOARD_OUTBOUND_ALLOWLIST must be networks separated by commas, "
        f"such as '127.0.0.0/8,::1/128', not {raw!r}"
    )


@pytest.mark.parametrize("raw", ["1", "1.5", "20"])
def test_a_retry_jitter_of_1_or_more_is_a_config_error(raw: str) -> None:
    """It is a fraction of each delay, either way: 1 or more could make a delay 0 or less."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SWITCHBOARD_RETRY_JITTER": raw})
    assert caught.value.message == (
        "SWITCHBOARD_RETRY_JITTER must be a fraction from 0 up to, not including, 1, "
        f"not {float(raw):g}"
    )
    assert Settings.from_env({"SWITCHBOARD_RETRY_JITTER": "0.99"}).retry_jitter == 0.99


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("amqp://u:secret@127.0.0.1:notaport/v", "names no usable port"),
        ("amqps://u:secret@rabbit:99999/v", "names no usable port"),
        ("amqp://u:secret@:5672/v", "names no host"),
        ("redis://:secret@127.0.0.1:notaport/0", "is not a Redis URL"),
        ("redis://:secret@/0", "names no host"),
        ("redis://:secret@queue:6379/one", "names no database number"),
        ("redis+sentinel://:secret@s1:26379,s2:x/0", "names no host and port"),
    ],
)
def test_a_broker_url_without_a_usable_host_or_port_is_a_config_error(raw: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SWITCHBOARD_BROKER_URL": raw})
    assert caught.value.message.startswith(f"SWITCHBOARD_BROKER_URL {says}")
    assert "secret" not in caught.value.message
