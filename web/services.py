"""What the web app's handlers share: settings, a Redis client, and a way to send tasks."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from broker.core.connection import Redis, connect
from broker.core.sender import TaskSender
from broker.core.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    redis: Redis
    sender: TaskSender

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        from workers.celery_app import CelerySender, make_celery

        r = connect(settings.redis_url, sentinel_master=settings.sentinel_master)
        return cls(settings, r, CelerySender(make_celery(settings)))


def services() -> Services:
    return current_app.extensions["switchboard"]  # type: ignore[no-any-return]
