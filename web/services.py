"""What the web app's handlers share: settings, a Redis client, and a way to send tasks.

Whoever starts the web process builds them (`switchboard web` with Celery's sender, tests
with a recording one), so `web/` never imports the workers.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from broker.core.connection import Redis
from broker.core.sender import TaskSender
from broker.core.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    redis: Redis
    sender: TaskSender


def services() -> Services:
    return current_app.extensions["switchboard"]  # type: ignore[no-any-return]
