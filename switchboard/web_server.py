"""Serving the Flask app from inside the `switchboard web` command: gunicorn's arbiter
forks, watches and restarts the web processes; each serves HTTP on an event loop of its own
(`switchboard/http_protocol.py`), calling the app on the loop for the message routes and
liveness, on a pool of threads for the rest.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvloop
from gunicorn.app.base import BaseApplication
from gunicorn.workers.base import Worker

from broker.core.connection import connect
from broker.core.settings import Settings
from switchboard.connection_cap import ConnectionCap, connection_cap, raise_fd_limit
from switchboard.http_protocol import HttpProtocol, Incoming, Limits, Outgoing, Site, sweep
from web import Services, check_settings, create_app, message_route

#: How often a web process tells the arbiter it is alive and sweeps its idle connections.
_TICK_SECONDS = 1.0


def answered_inline(method: str, target: bytes) -> bool:
    """The message routes and liveness: a Redis round trip or two each, and the bulk of the
    traffic, so they are answered on the event loop. Every other route (management, pages,
    the health check of a handover endpoint that may take seconds) takes a pool thread."""
    if method == "POST":
        path = target.partition(b"?")[0]
        return (
            path.startswith(b"/v1/channels/webhook/") and path.endswith(b"/messages")
        ) or path.startswith(b"/api/webhookMessage/")
    return liveness(method, target)


def liveness(method: str, target: bytes) -> bool:
    return method == "GET" and target == b"/healthz"


def inline_routes(settings: Settings) -> Callable[[str, bytes], bool]:
    """Which requests the event loop answers itself. With SWITCHBOARD_INGRESS_REPLICAS a
    message waits for the replicas' copies (the whole SWITCHBOARD_INGRESS_REPLICA_WAIT while
    they are away): the message routes then take a pool thread, so the wait never holds the
    loop."""
    return liveness if settings.ingress_replicas else answered_inline


def answered_directly(services: Services) -> Callable[[Incoming], Outgoing | None]:
    """What the server answers without the Flask app: the message routes."""

    def answer(incoming: Incoming) -> Outgoing | None:
        return message_route.answer(
            services,
            incoming.method,
            incoming.path,
            incoming.headers,
            incoming.body,
            incoming.remote_addr,
        )

    return answer


class EventLoopWorker(Worker):  # type: ignore[misc]
    """A gunicorn worker serving its connections on one event loop."""

    def run(self) -> None:
        uvloop.run(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        limits = Limits(body_bytes=self.app.settings_.max_body_bytes)
        pool = ThreadPoolExecutor(self.cfg.threads, thread_name_prefix="web")
        connections: set[HttpProtocol] = set()
        cap = ConnectionCap(connections, connection_cap(raise_fd_limit(), self.cfg.threads))
        servers = []
        for listener in self.sockets:
            host, port = listener.sock.getsockname()[:2]
            site = Site(
                self.wsgi,
                limits,
                inline_routes(self.app.settings_),
                pool,
                str(host),
                str(port),
                direct=answered_directly(self.wsgi.extensions["switchboard"]),
            )

            def made(site: Site = site) -> asyncio.Protocol:
                return cap.admit(HttpProtocol(site))

            servers.append(await loop.create_server(made, sock=listener.sock))
        while self.alive and self.ppid == os.getppid():
            self.notify()
            sweep(connections, limits)
            await asyncio.sleep(_TICK_SECONDS)
        for server in servers:
            server.close()
        await self._drain(connections)
        pool.shutdown(wait=True)

    async def _drain(self, connections: set[HttpProtocol]) -> None:
        """Close idle connections at once; give those part-way through a request until the
        graceful timeout to finish it."""
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while time.monotonic() < deadline:
            for protocol in list(connections):
                if protocol.closing or not (protocol.in_request or protocol.busy):
                    protocol.close_when_idle()
                    connections.discard(protocol)
            if not connections:
                return
            self.notify()
            await asyncio.sleep(0.1)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any], settings: Settings) -> None:
        self.options = options
        self.settings_ = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Each gunicorn worker process makes its own connections, after the fork.
        from workers.celery_app import CelerySender, make_celery

        settings = self.settings_
        redis = connect(
            settings.redis_url,
            sentinel_master=settings.sentinel_master,
            timeout=settings.web_redis_wait,
        )
        sender = CelerySender(make_celery(settings), redis)
        return create_app(Services(settings, redis, sender))


def serve(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    """Serve with `workers` web processes, each with `threads` threads for the routes not
    answered on its event loop."""
    from workers.celery_app import check_broker, make_celery

    check_settings(settings)
    check_broker(make_celery(settings))
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": EventLoopWorker,
        "threads": threads,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        # A process that does not report in for this long is killed. A stalled Redis holds
        # the loop for at most SWITCHBOARD_WEB_REDIS_TIMEOUT at a time (`web/redis_gate.py`).
        "timeout": 30,
    }
    _Gunicorn(options, settings).run()
