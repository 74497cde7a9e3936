"""The Flask app in-process, on a real Redis database of its own, with a recording task sender."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient

from broker.core import keys
from broker.core.connection import Redis
from broker.core.settings import Settings
from tests.conftest import LOOPBACK, require_redis
from tests.fakes import RecordingSender
from tests.redis_databases import db, url
from web import create_app
from web.services import Services

ADMIN_TOKEN = "web-test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class WebApp:
    app: Flask
    client: FlaskClient
    redis: Redis
    sender: RecordingSender
    settings: Settings

    def bot(self, definition: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.client.post(
            "/v1/bots",
            json={"name": "test", "definition": definition or {"template": "echo"}},
            headers=ADMIN,
        )
        assert answer.status_code == 201, answer.json
        return answer.json  # type: ignore[no-any-return]

    def channel(self, bot_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """A channel (of a new echo bot unless `bot_id` is given), with its access token."""
        bot_id = bot_id or self.bot()["id"]
        answer = self.client.post(
            f"/v1/bots/{bot_id}/channels/webhook",
            json={"webhookUrl": "http://127.0.0.1:9/hook", **fields},
            headers=ADMIN,
        )
        assert answer.status_code == 201, answer.json
        return answer.json  # type: ignore[no-any-return]

    def queued_keys(self) -> list[str]:
        """Conversation inboxes that hold something: what a bot turn would take."""
        return sorted(self.redis.scan_iter(match=keys.conversation_inbox("*"), count=1000))


@contextmanager
def web_app(**changes: Any) -> Iterator[WebApp]:
    """The app on database `db`, flushed before and after."""
    require_redis()
    web_url = url(db("app"))
    settings = Settings(
        redis_url=web_url,
        broker_url=web_url,
        admin_token=ADMIN_TOKEN,
        outbound_allowlist=LOOPBACK,
    ).with_changes(**changes)
    client = redis.Redis.from_url(web_url, decode_responses=True)
    client.flushdb()
    sender = RecordingSender()
    app = create_app(Services(settings, client, sender))
    try:
        yield WebApp(app, app.test_client(), client, sender, settings)
    finally:
        client.flushdb()
        client.close()
