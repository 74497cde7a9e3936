"""The recipe a developer writes in an afternoon, as the benchmark's yardstick: a Flask route
that calls `.delay()`, a Celery task per bot turn and another per delivery, which posts
with `requests` and retries with `autoretry_for`. The web runs under gunicorn, the worker
is Celery's default prefork pool:

    PLAIN_REDIS_URL=... PLAIN_RECEIVER_URL=... gunicorn -w 2 bench.plain_recipe:app
    PLAIN_REDIS_URL=... PLAIN_RECEIVER_URL=... celery -A bench.plain_recipe worker -c 2
"""

from __future__ import annotations

import os
from typing import Any

import requests
from celery import Celery
from flask import Flask, request

celery = Celery("plain", broker=os.environ.get("PLAIN_REDIS_URL", "redis://127.0.0.1:6379/0"))
celery.conf.task_ignore_result = True
app = Flask(__name__)
_http = requests.Session()


@app.post("/v1/channels/webhook/<channel_id>/messages")
def post_message(channel_id: str) -> tuple[dict[str, str], int]:
    body = request.get_json()
    bot_turn.delay(body["conversationId"], body["message"]["textMessage"]["text"])
    return {"status": "queued"}, 202


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@celery.task  # type: ignore[untyped-decorator]
def bot_turn(conversation: str, text: str) -> None:
    deliver.delay({"recipient": {"id": conversation}, "message": {"text": f"You said: {text}"}})


@celery.task(  # type: ignore[untyped-decorator]
    autoretry_for=(requests.RequestException,), retry_backoff=True, max_retries=10
)
def deliver(body: dict[str, Any]) -> None:
    answer = _http.post(os.environ["PLAIN_RECEIVER_URL"], json=body, timeout=10)
    answer.raise_for_status()
