"""`switchboard demo`: a scripted conversation through the whole pipeline, start to finish."""

from __future__ import annotations

import importlib.util
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import requests

from broker.core.settings import Settings
from switchboard.embedded_redis import EmbeddedRedis, free_port
from switchboard.sample_receiver import Received, SampleReceiver
from switchboard.stack import Stack
from web import check_settings

#: What the user says. "human" asks for a human: the handover desk takes the conversation,
#: the next message goes to its agent, and the agent hands back before the last one.
CONVERSATION: list[dict[str, object]] = [
    {"introMessage": {}},
    {"textMessage": {"text": "I want a pizza"}},
    {"textMessage": {"text": "human"}},
    {"textMessage": {"text": "Is anyone there?"}},
    {"textMessage": {"text": "Thanks, bye"}},
]
AGENT_SAYS = "Hi, this is Sam from support. Your pizza is on its way!"
#: What reaches the channel: the bot's welcome and echo, the agent's answer, the bot again.
REPLIES = 4
#: The receiver answers 503 to the first try of this reply, so that it arrives on retry.
FAILING_REPLY = 2
DEADLINE = 60.0


_printing = threading.Lock()


def say(text: str) -> None:
    """Print a line whole: the receiver and the desk print from threads of their own."""
    with _printing:
        print(text, flush=True)


def run_demo(keep_dir: str | None = None) -> int:
    """The demo; its folder (a temporary one unless `keep_dir`) is removed when it went well,
    and kept, with the processes' log, when it did not."""
    started = time.monotonic()
    # Settings the roles would refuse, said now rather than as a role that exited.
    check_settings(Settings.from_env())
    # SIGTERM (a `kill`, a CI job cancelled) stops it as Ctrl-C does: every process it
    # started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    workdir = Path(keep_dir or tempfile.mkdtemp(prefix="switchboard-demo-"))
    code = _demo_in(workdir, started)
    if code == 0 and not keep_dir:
        shutil.rmtree(workdir, ignore_errors=True)
    return code


def _demo_in(workdir: Path, started: float) -> int:
    redis_server = EmbeddedRedis(workdir / "redis", persistent=False, tied=True)
    origin = redis_server.start()
    say(f"Redis: embedded, {origin}, on port {redis_server.port}")
    receiver = SampleReceiver(fail_once={FAILING_REPLY})
    receiver_port = receiver.start()
    say(f"Sample receiver (the customer's webhook) on http://127.0.0.1:{receiver_port}/hook")
    admin = secrets.token_urlsafe(32)
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
            tied=True,
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
    desk = load_example("handover_desk").HandoverDesk(
        base, bot_id, show=lambda line: say(f"  desk {line.removeprefix('  ')}")
    )
    desk.configure(admin, desk.start())
    say(f"Created echo bot {bot_id}, webhook channel {created['id']}, and a handover desk")

    def show(item: Received) -> None:
        retry_note = f", on try {item.attempt} after a 503" if item.attempt > 1 else ""
        check = "signature ok" if item.signature_ok else "SIGNATURE INVALID"
        say(
            f"  <- #{item.body['messageCounter']} {item.body['message'].get('text')!r} "
            f"({item.webhook_id}{retry_note}; {check})"
        )

    receiver.on_delivery = show
    auth = {"Authorization": f"Bearer {created['accessToken']}"}

    def send(message: dict[str, object]) -> None:
        say(f"  -> {message}")
        answer = requests.post(
            created["messagesUrl"],
            json={"conversationId": "demo-user", "message": message},
            headers=auth,
            timeout=10,
        )
        if answer.status_code != 202:
            raise RuntimeError(f"the message API answered {answer.status_code} {answer.text}")

    # Each step waits for what it causes, so that the story reads in order.
    intro, pizza, human, anyone, bye = CONVERSATION
    try:
        send(intro)
        _wait(lambda: len(receiver.received) >= 1, "welcome")
        send(pizza)
        _wait(lambda: len(receiver.received) >= 2, "echo")
        send(human)
        _wait(lambda: bool(desk.handed_over), "handover")
        send(anyone)
        _wait(lambda: _said_to_desk(desk, "Is anyone there?"), "message for the agent")
        desk.send("demo-user", AGENT_SAYS)
        _wait(lambda: len(receiver.received) >= 3, "agent's answer")
        desk.resume("demo-user")
        say("  (the agent hands the conversation back to the bot)")
        send(bye)
        _wait(lambda: len(receiver.received) >= REPLIES, "last reply")
        _wait(lambda: _said_to_desk(desk, "You said: Thanks, bye"), "desk's last event")
    except TimeoutError as exc:
        say(f"demo FAILED: no {exc} within {DEADLINE:g} s (log: {log_path})")
        return 1
    except RuntimeError as exc:
        say(f"demo failed: {exc}")
        return 1
    finally:
        desk.stop()
    got = receiver.received
    counters = [item.body["messageCounter"] for item in got]
    retried = sum(1 for item in got if item.attempt > 1)
    problems = []
    if len(got) != REPLIES:
        problems.append(f"{len(got)} of {REPLIES} replies arrived")
    if counters != sorted(counters):
        problems.append(f"replies out of order: {counters}")
    if not all(item.signature_ok for item in got):
        problems.append("a signature did not verify")
    if retried != 1:
        problems.append(f"{retried} replies needed a retry, 1 was planned")
    if AGENT_SAYS not in [item.body["message"].get("text") for item in got]:
        problems.append("the agent's answer did not reach the channel")
    elapsed = time.monotonic() - started
    if problems:
        say(f"demo FAILED: {'; '.join(problems)} (log: {log_path})")
        return 1
    say(
        f"demo ok: {len(CONVERSATION)} messages in, {len(got)} replies delivered in order "
        f"(1 from an agent after a handover), {retried} after a retry, "
        f"every signature valid, in {elapsed:.1f} s"
    )
    return 0


def _wait(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def _said_to_desk(desk: Any, text: str) -> bool:
    """Whether a `messages` event the desk took holds `text`."""
    return any(
        item["message"].get("text") == text
        for event in list(desk.events)
        if event.get("event") == "messages"
        for item in event["messages"]
    )


def load_example(name: str) -> ModuleType:
    """A program of `examples/`: beside the sources in a checkout, or where the package
    installs it (`<prefix>/share/switchboard/examples`)."""
    for folder in (
        Path(__file__).resolve().parents[1] / "examples",
        Path(sys.prefix) / "share" / "switchboard" / "examples",
    ):
        path = folder / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        if path.exists() and spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # its dataclasses look themselves up there
            spec.loader.exec_module(module)
            return module
    raise RuntimeError(f"examples/{name}.py is not installed")


if __name__ == "__main__":
    sys.exit(run_demo())
