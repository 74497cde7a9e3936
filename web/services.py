"""What the web app's handlers share: settings, a Redis client, a way to send tasks, the
channels authenticated lately, and whether Redis answers.

Whoever starts the web process builds them (`switchboard web` with Celery's sender, tests
with a recording one), so `web/` never imports the workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from broker.channels.channel_cache import ChannelCache
from broker.core.connection import Redis
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from web.redis_gate import RedisGate


@dataclass(frozen=True)
class Services:
    settings: Settings
    redis: Redis
    sender: TaskSender
    channels: ChannelCache = field(default_factory=ChannelCache)
    #: Turns requests away at once while Redis is unreachable (`web/redis_gate.py`).
    redis_gate: RedisGate = field(default_factory=RedisGate)


def services() -> Services:
    return current_app.extensions["switchboard"]  # type: ignore[no-any-return]
