"""The Flask app in-process, on a real Redis of its own (a database, or a cluster), with a
recording task sender.

Its answers are read with `get_json()`, which is typed `Any`, where `.json` is `Any | None`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from broker.conversations import turns
from broker.core import ids, keys
from broker.core import metrics as broker_metrics
from broker.core.connection import Redis, connect
from broker.core.settings import Settings
from broker.delivery.http_client import HttpClient
from tests.app_redis import app_broker_url, app_url, require_app_redis
from tests.delivery_work import work_due
from tests.direct_answers import DirectFirst
from tests.fakes import RecordingSender
from tests.settings import LOOPBACK
from tests.wire_fixtures import wire_fixture
from web import create_app
from web.services import Services

ADMIN_TOKEN = "web-test-admin-token-long-enough"
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
        assert answer.status_code == 201, answer.get_json()
        created: dict[str, Any] = answer.get_json()
        return created

    def channel(self, bot_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """A channel (of a new echo bot unless `bot_id` is given), with its access token."""
        bot_id = bot_id or self.bot()["id"]
        answer = self.client.post(
            f"/v1/bots/{bot_id}/channels/webhook",
            json={"webhookUrl": "http://127.0.0.1:9/hook", **fields},
            headers=ADMIN,
        )
        assert answer.status_code == 201, answer.get_json()
        created: dict[str, Any] = answer.get_json()
        return created

    def post_message(
        self,
        channel: dict[str, Any],
        body: Any,
        headers: Mapping[str, str] | None = None,
        *,
        client: FlaskClient | None = None,
    ) -> TestResponse:
        """POST `body` as JSON to the channel's message route, with its access token and the
        `headers` given."""
        return (client or self.client).post(
            f"/v1/channels/webhook/{channel['id']}/messages",
            json=body,
            headers={"Authorization": f"Bearer {channel['accessToken']}", **(headers or {})},
        )

    def send(
        self,
        channel: dict[str, Any],
        conversation_id: str,
        text: str | None = None,
        *,
        client: FlaskClient | None = None,
        **extra: Any,
    ) -> TestResponse:
        """A user's message on the channel: `text`, or the intro without one."""
        message = {"textMessage": {"text": text}} if text is not None else {"introMessage": {}}
        return self.post_message(
            channel, {"conversationId": conversation_id, "message": message, **extra}, client=client
        )

    def say(
        self, channel: dict[str, Any], conversation_id: str, text: str | None = None, **extra: Any
    ) -> None:
        """A user's message, accepted, and the bot turn that answers it."""
        answer = self.send(channel, conversation_id, text, **extra)
        assert answer.status_code == 202, answer.get_json()
        turns.run_pending(
            self.redis, self.settings, self.sender, self.conversation_key(channel, conversation_id)
        )

    def conversation_key(self, channel: dict[str, Any], conversation_id: str) -> str:
        return ids.conversation_key(
            channel["botId"], channel["version"], channel["id"], conversation_id
        )

    def inbox(self, channel: dict[str, Any], conversation_id: str) -> list[dict[str, Any]]:
        """The messages that wait in the conversation's inbox for a bot turn, oldest first."""
        inbox = keys.conversation_inbox(self.conversation_key(channel, conversation_id))
        return [json.loads(item) for item in self.redis.lrange(inbox, 0, -1)]

    def deliver_due(self) -> None:
        """Work every delivery queue on the schedule once, to real endpoints, as a worker
        would: each until it must wait (a retry, an open circuit) or is empty."""
        work_due(self.redis, self.settings, HttpClient(self.settings.outbound_allowlist, "test"))

    def queued_keys(self) -> list[str]:
        """Conversation inboxes that hold something: what a bot turn would take."""
        return sorted(self.redis.scan_iter(match=keys.conversation_inbox("*"), count=1000))


def api_error(answer: TestResponse, status: int, code: str, field: str | None = None) -> str:
    """Check that `answer` is the API's JSON error (tests/fixtures/error.json shows one) with
    this status, code and field (None: no field); return its message."""
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.content_type == "application/json"
    error = answer.get_json()["error"]
    assert set(error) <= set(wire_fixture("error.json")["error"])
    assert error["code"] == code and error["message"]
    assert error.get("field") == field
    return str(error["message"])


#: Whether `web_app` answers as `switchboard web` does unless told (`served_by` in
#: tests/api/conftest.py sets it).
DIRECT = False


@contextmanager
def web_app(*, direct: bool | None = None, **changes: Any) -> Iterator[WebApp]:
    """The app on this run's Redis for in-process tests (tests/app_redis.py), flushed before
    and after, with the settings changed as given; `direct`: with what `switchboard web`
    answers without the app answered that way (tests/direct_answers.py)."""
    require_app_redis()
    web_url = app_url()
    settings = Settings(
        redis_url=web_url,
        broker_url=app_broker_url(),
        admin_token=ADMIN_TOKEN,
        outbound_allowlist=LOOPBACK,
    ).with_changes(**changes)
    client = connect(web_url)
    client.flushdb()
    sender = RecordingSender()
    services = Services(settings, client, sender)
    app = create_app(services)
    if DIRECT if direct is None else direct:
        app.wsgi_app = DirectFirst(app.wsgi_app, services)  # type: ignore[method-assign]
    try:
        yield WebApp(app, app.test_client(), client, sender, settings)
    finally:
        # What the app counted goes before its client: a cluster client cannot be used
        # once closed, where a single Redis's would open a connection again.
        broker_metrics.flush()
        client.flushdb()
        client.close()
