"""Celery's broker connections: on Redis, the timeouts and keepalive of our own, so that a
publish on a connection Redis left without closing fails instead of waiting for ever; on
RabbitMQ, its heartbeats."""

from __future__ import annotations

import pytest
from kombu.transport.redis import Channel, SentinelChannel

from broker.core.defaults import REDIS_SOCKET_TIMEOUT
from broker.core.settings import Settings
from workers.celery_app import BROKER_CONNECT_TIMEOUT, VISIBILITY_TIMEOUT, make_celery


@pytest.mark.parametrize(
    "broker",
    ["redis://127.0.0.1:6379/1", "rediss://127.0.0.1:6380/1", "redis+sentinel://s1,s2:26380/1"],
)
def test_a_redis_broker_s_connections_time_out_and_keep_alive(broker: str) -> None:
    options = make_celery(Settings(broker_url=broker)).conf.broker_transport_options
    assert options["socket_timeout"] == REDIS_SOCKET_TIMEOUT
    assert options["socket_connect_timeout"] == BROKER_CONNECT_TIMEOUT
    assert options["health_check_interval"]
    assert options["socket_keepalive"] is True
    assert options["socket_keepalive_options"]
    assert options["visibility_timeout"] == VISIBILITY_TIMEOUT
    # kombu takes every one of them (it passes over options it does not know).
    assert set(options) <= {*SentinelChannel.from_transport_options}


def test_a_broker_on_a_unix_socket_times_out() -> None:
    settings = Settings(redis_url="unix:///run/redis.sock?db=2")
    options = make_celery(settings).conf.broker_transport_options
    assert options["socket_timeout"] == REDIS_SOCKET_TIMEOUT
    assert set(options) <= {*Channel.from_transport_options}


def test_rabbitmq_keeps_its_heartbeats_and_takes_no_redis_options() -> None:
    conf = make_celery(Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//")).conf
    assert conf.broker_heartbeat > 0
    assert not {"socket_timeout", "socket_keepalive"} & set(conf.broker_transport_options)
