"""Serving the Flask app with gunicorn, from inside the `switchboard web` command."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from broker.core.connection import connect
from broker.core.settings import Settings
from web import Services, create_app


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
        redis = connect(settings.redis_url, sentinel_master=settings.sentinel_master)
        return create_app(Services(settings, redis, CelerySender(make_celery(settings), redis)))


def serve(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "timeout": 30,
        "keepalive": 5,
    }
    _Gunicorn(options, settings).run()
