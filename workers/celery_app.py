"""The Celery app. Tasks are thin wrappers around `broker/`; see `workers.tasks`."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from amqp.exceptions import AMQPError, IrrecoverableChannelError, IrrecoverableConnectionError
from celery import Celery
from kombu.exceptions import KombuError

from broker.core import clock, keys
from broker.core.connection import (
    REDIS_TROUBLE,
    Redis,
    is_sentinel,
    on_cluster,
    sentinel_hosts,
    socket_options,
)
from broker.core.defaults import BROKER_TROUBLE_SHOWN, SCHEDULER_BATCH
from broker.core.errors import ConfigError
from broker.core.settings import Settings

log = logging.getLogger(__name__)

DELIVERY_QUEUE = "switchboard.deliveries"
DELIVER_TASK = "switchboard.deliver"

#: Celery's broker gives an unacknowledged task to another worker after this long;
#: far longer than any task, since the scheduler recovers dead workers' work sooner.
VISIBILITY_TIMEOUT = 3600
#: What sending a task can raise when its transport is in trouble (RabbitMQ's own errors,
#: a refused login among them, are not kombu's).
_SEND_TROUBLE: tuple[type[Exception], ...] = (KombuError, AMQPError, *REDIS_TROUBLE)
#: RabbitMQ's answers that trying again never changes: a wrong login, an unknown vhost.
_REFUSED = (IrrecoverableConnectionError, IrrecoverableChannelError)
#: Seconds to wait for the broker's connection: a request that sends a task waits this
#: long, at most, on a broker that hangs.
BROKER_CONNECT_TIMEOUT = 2.0


def make_celery(settings: Settings) -> Celery:
    broker = kombu_url(settings.broker_url)
    app = Celery("switchboard", broker=broker, include=["workers.tasks"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        # Said, not left to Celery's default (which warns at every lost connection): a
        # task cut off by a lost connection runs to its end, and when its message comes
        # again the claims and locks it takes find nothing left to do.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_timeout=BROKER_CONNECT_TIMEOUT,
        broker_transport_options=transport_options(broker),
        broker_pool_limit=16,
        task_default_queue=DELIVERY_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        # Task events, so that Flower (and `celery events`) can follow the workers. The web
        # process sends no "task-sent" events: each would cost the ingress a round trip to
        # the broker for every new conversation; Flower shows a task from its receipt on.
        # Like every publish, an event waits no longer than the transport's socket timeout.
        worker_send_task_events=True,
        task_send_sent_event=False,
    )
    if is_sentinel(settings.broker_url):
        app.conf.broker_transport_options["master_name"] = settings.sentinel_master
    app.conf.switchboard_settings = settings
    return app


def transport_options(broker: str) -> dict[str, Any]:
    """kombu's options for Celery's broker at kombu URL `broker`. On Redis, the timeouts,
    health checks and keepalive of our own connections (`socket_options`), connecting
    within BROKER_CONNECT_TIMEOUT: without them a publish (a task, an event, Celery's
    worker heartbeat) on a connection that Redis left without closing waited for ever, the
    worker's consumer or the scheduler's loop with it. RabbitMQ's connections have
    heartbeats (Celery's `broker_heartbeat`) and py-amqp's keepalive instead."""
    options: dict[str, Any] = {"visibility_timeout": VISIBILITY_TIMEOUT}
    if broker.startswith(("redis://", "rediss://", "redis+socket://", "sentinel://")):
        options.update(socket_options(broker), socket_connect_timeout=BROKER_CONNECT_TIMEOUT)
    return options


def refusals_are_connection_trouble() -> None:
    """Make kombu's Redis transport take Redis's refusals (MISCONF when it cannot persist,
    READONLY, NOREPLICAS, OOM) as it takes a lost connection: the worker's consumer
    reconnects, with its backoff, until Redis writes again. Taken as any other error, one
    ended the worker, with exit code 0, while Redis only had a full disk for a moment."""
    import redis
    from kombu.transport import redis as kombu_redis

    transport = kombu_redis.Transport
    if redis.ResponseError not in transport.connection_errors:
        transport.connection_errors = (*transport.connection_errors, redis.ResponseError)


def no_restore_when_the_connection_is_lost() -> None:
    """Keep kombu's Redis transport from putting the tasks it holds unacknowledged back on
    their queue when its channel closes. After a lost connection (a Sentinel failover) that
    restore needs the connection already let go of, and its AttributeError ended the worker
    ("Unrecoverable error"). Nothing is lost without it: a task only says "look at these
    queues now", and the queues stay on `sb:due`, where the scheduler hands them out again
    once their claim runs out."""
    from kombu.transport import redis as kombu_redis

    kombu_redis.Channel.do_restore = False


def check_broker(app: Celery) -> None:
    """ConfigError for a broker that will never take us (a wrong login, an unknown vhost),
    at start rather than at the first task; one that is only away is logged: everything
    but the scheduler's hand-outs goes on in Redis without it."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
    except _REFUSED as exc:
        raise ConfigError(f"SWITCHBOARD_BROKER_URL: the broker refused us: {exc}") from None
    except _SEND_TROUBLE as exc:
        log.warning("Celery's broker cannot be reached for now (%s); going on without it", exc)


def kombu_url(url: str) -> str:
    """Celery's broker URL for ours: a Sentinel URL becomes kombu's list of `sentinel://` URLs
    separated by semicolons, a Unix socket's kombu's `redis+socket://` (its database as the
    virtual host); any other passes as it is."""
    if url.startswith("unix://"):
        parts = urlsplit(url)
        database = parse_qs(parts.query).get("db", ["0"])[0]
        return f"redis+socket://{parts.netloc}{parts.path}?virtual_host={database}"
    if not is_sentinel(url):
        return url
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    login = f"{credentials}@" if credentials else ""
    return ";".join(
        f"sentinel://{login}{host}:{port}{parts.path}" for host, port in sentinel_hosts(url)
    )


class CelerySender:
    """`broker.sender.TaskSender` of the workers: a bot turn goes on the ready list that
    their turn runners read, delivery queues go as Celery tasks. Best effort, as the
    protocol says."""

    def __init__(self, app: Celery, redis: Redis) -> None:
        self._app = app
        self._redis = redis
        self.ready_list = None if on_cluster(redis) else keys.READY

    def bot_turn(self, conversation_key: str) -> None:
        try:
            self._redis.rpush(keys.READY, conversation_key)
        except REDIS_TROUBLE as exc:
            log.warning("bot turn not put on the ready list (%s); the scheduler wakes it", exc)

    def deliver(self, queues: Sequence[str]) -> None:
        refs = list(queues)
        for start in range(0, len(refs), SCHEDULER_BATCH):
            self._send(DELIVER_TASK, [refs[start : start + SCHEDULER_BATCH]], DELIVERY_QUEUE)

    def _send(self, task: str, args: list[Any], queue: str) -> None:
        try:
            self._app.send_task(task, args=args, queue=queue)
        except _SEND_TROUBLE as exc:
            log.warning("%s not sent (%s); the scheduler hands its work out", task, exc)
            trouble = json.dumps({"at": clock.iso(clock.now()), "error": str(exc)[:300]})
            with contextlib.suppress(*REDIS_TROUBLE):
                self._redis.set(keys.BROKER_TROUBLE, trouble, ex=BROKER_TROUBLE_SHOWN)


def settings_of(app: Any) -> Settings:
    return app.conf.switchboard_settings  # type: ignore[no-any-return]
