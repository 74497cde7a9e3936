"""`switchboard demo`: a scripted conversation through the whole pipeline, start to finish."""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from pathlib import Path

import requests

from switchboard.embedded_redis import EmbeddedRedis, free_port
from switchboard.sample_receiver import Received, SampleReceiver
from switchboard.stack import Stack

CONVERSATION: list[dict[str, object]] = [
    {"introMessage": {}},
    {"textMessage": {"text": "I want a pizza"}},
    {"textMessage": {"text": "human"}},
    {"textMessage": {"text": "Thanks, bye"}},
]
#: The receiver answers 503 to the first try of this reply, so that it arrives on retry.
FAILING_REPLY = 2
DEADLINE = 60.0


def say(text: str) -> None:
    print(text, flush=True)


def run_demo(keep_dir: str | None = None) -> int:
    started = time.monotonic()
    workdir = Path(keep_dir or tempfile.mkdtemp(prefix="switchboard-demo-"))
    redis_server = EmbeddedRedis(workdir / "redis", persistent=False)
    origin = redis_server.start()
    say(f"Redis: embedded, {origin}, on port {redis_server.port}")
    receiver = SampleReceiver(fail_once={FAILING_REPLY})
    receiver_port = receiver.start()
    say(f"Sample receiver (the customer's webhook) on http://127.0.0.1:{receiver_port}/hook")
    admin = secrets.token_urlsafe(16)
    port = free_port()
    log_path = workdir / "switchboard.log"
    with log_path.open("ab") as log:
        stack = Stack(
            {
                "REDIS_URL": redis_server.url,
                "SWITCHBOARD_ADMIN_TOKEN": admin,
                "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "SWITCHBOARD_OUTBOUND_ALLOWLIST": "127.0.0.0/8",
                "SWITCHBOARD_RETRY_SCHEDULE": "0,1,2,5",
                "SWITCHBOARD_SCHEDULER_INTERVAL": "0.1",
            },
            port=port,
            log=log,
        )
        try:
            stack.start()
            stack.wait_ready()
            say(f"Switchboard: web on {stack.url}, a worker and the scheduler, each a process")
            return _converse(stack.url, admin, receiver, receiver_port, started, log_path)
        except (RuntimeError, requests.RequestException) as exc:
            say(f"demo failed: {exc}; the processes' log is {log_path}")
            return 1
        finally:
            stack.stop()
            receiver.stop()
            redis_server.stop()


def _converse(
    base: str,
    admin: str,
    receiver: SampleReceiver,
    receiver_port: int,
    started: float,
    log_path: Path,
) -> int:
    headers = {"Authorization": f"Bearer {admin}"}
    bot = requests.post(
        f"{base}/v1/bots",
        json={"name": "demo", "definition": {"template": "echo"}},
        headers=headers,
        timeout=10,
    )
    bot.raise_for_status()
    bot_id = bot.json()["id"]
    channel = requests.post(
        f"{base}/v1/bots/{bot_id}/channels/webhook",
        json={"webhookUrl": f"http://127.0.0.1:{receiver_port}/hook"},
        headers=headers,
        timeout=10,
    )
    channel.raise_for_status()
    created = channel.json()
    receiver.secret = created["signingSecret"]
    say(f"Created echo bot {bot_id} and webhook channel {created['id']}")

    def show(item: Received) -> None:
        retry_note = f", on try {item.attempt} after a 503" if item.attempt > 1 else ""
        check = "signature ok" if item.signature_ok else "SIGNATURE INVALID"
        say(
            f"  <- #{item.body['messageCounter']} {item.body['message'].get('text')!r} "
            f"({item.webhook_id}{retry_note}; {check})"
        )

    receiver.on_delivery = show
    auth = {"Authorization": f"Bearer {created['accessToken']}"}
    for message in CONVERSATION:
        say(f"  -> {message}")
        answer = requests.post(
            created["messagesUrl"],
            json={"conversationId": "demo-user", "message": message},
            headers=auth,
            timeout=10,
        )
        if answer.status_code != 202:
            say(f"demo failed: the message API answered {answer.status_code} {answer.text}")
            return 1
    deadline = time.monotonic() + DEADLINE
    while len(receiver.received) < len(CONVERSATION) and time.monotonic() < deadline:
        time.sleep(0.05)
    got = receiver.received
    counters = [item.body["messageCounter"] for item in got]
    retried = sum(1 for item in got if item.attempt > 1)
    problems = []
    if len(got) != len(CONVERSATION):
        problems.append(f"{len(got)} of {len(CONVERSATION)} replies arrived")
    if counters != sorted(counters):
        problems.append(f"replies out of order: {counters}")
    if not all(item.signature_ok for item in got):
        problems.append("a signature did not verify")
    if retried != 1:
        problems.append(f"{retried} replies needed a retry, 1 was planned")
    elapsed = time.monotonic() - started
    if problems:
        say(f"demo FAILED: {'; '.join(problems)} (log: {log_path})")
        return 1
    say(
        f"demo ok: {len(CONVERSATION)} messages in, {len(got)} replies delivered in order, "
        f"{retried} after a retry, every signature valid, in {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
