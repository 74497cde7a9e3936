"""How many delivery attempts one worker process sustains.

    python -m bench.delivery_throughput [--deliveries N] [--conversations S] [--endpoints E]

Starts ONE `switchboard worker` process (threads pool) and a scheduler, against
two databases of their own on the local Redis (127.0.0.1:6379: free ones, or `--db`
and the one after it; flushed first), and a local receiver. It loads N deliveries
across S conversations straight into the core (`broker.delivery.fanout.commit_turns`,
without waking anyone), then hands every queue to the scheduler at once and times until
the receiver has them all: first against a receiver that answers at once, then against
one that takes 200 ms.
Loopback only; each case stops by itself after `--timeout` seconds.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.databases import BenchDatabases
from broker.core import clock, heartbeats, ids, keys
from broker.core.connection import Redis
from broker.core.settings import Settings
from broker.delivery import endpoint_store, fanout
from broker.delivery.endpoint import Endpoint
from broker.delivery.records import Delivery, due_member, queue_ref


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Read by the constructor's listen(): set on the instance afterwards, it came too late,
    # and connections past the default backlog of 5 waited a second for their SYN again.
    request_queue_size = 512


class _Receiver:
    """A local endpoint that answers 200 after `delay` seconds and counts what it got."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.count = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._lock:
                    receiver.count += 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True)
class Result:
    label: str
    deliveries: int
    attempts: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.attempts / self.seconds if self.seconds else 0.0


def _load(
    r: Redis, settings: Settings, endpoint_id: str, conversations: int, per_conversation: int
) -> list[str]:
    refs = []
    body = {"message": {"text": "benchmark"}, "senderId": "bench"}
    for s in range(conversations):
        conversation_key = ids.conversation_key("bench", "LIVE", endpoint_id, f"{endpoint_id}-{s}")
        new = [
            Delivery.new(
                id=ids.delivery_id(conversation_key, ids.random_hex(8), 1),
                endpoint_id=endpoint_id,
                kind="message",
                bot_id="bench",
                conversation_id=f"user-{s}",
                body={**body, "messageCounter": n + 1},
                created_at=clock.now(),
            )
            for n in range(per_conversation)
        ]
        token = secrets.token_hex(8)
        r.set(keys.conversation_lock(conversation_key), token)  # a turn's, as a worker's
        fanout.commit_turns(
            r,
            settings,
            [fanout.TurnCommit(conversation_key, meta={"botId": "bench"}, deliveries=new)],
            lock_token=token,
            claim_token=token,
            end_turns=False,
        )
        # Let go, for the scheduler to hand out when we say go.
        r.delete(
            keys.conversation_lock(conversation_key), keys.fifo_lock(conversation_key, endpoint_id)
        )
        refs.append(due_member(queue_ref(conversation_key, endpoint_id), token))
    # Nobody looks at them before we say go.
    r.zadd(keys.DUE, dict.fromkeys(refs, clock.now() + 3600))
    return refs


def run_case(
    r: Redis,
    settings: Settings,
    label: str,
    delay: float,
    total: int,
    conversations: int,
    timeout: float,
    endpoint_count: int,
) -> Result:
    receiver = _Receiver(delay)
    try:
        per_conversation = max(total // conversations, 1)
        refs: list[str] = []
        for n in range(endpoint_count):
            endpoint_id = ids.new_id("ch")
            endpoint_store.save(
                r,
                Endpoint(
                    id=endpoint_id,
                    kind="channel",
                    bot_id="bench",
                    url=f"{receiver.url}/{n}",
                    secret=ids.new_signing_secret(),
                ),
            )
            refs += _load(
                r, settings, endpoint_id, conversations // endpoint_count, per_conversation
            )
        expected = per_conversation * len(refs)
        started = time.monotonic()
        r.zadd(keys.DUE, dict.fromkeys(refs, clock.now()))
        deadline = started + timeout
        while receiver.count < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        return Result(label, expected, receiver.count, elapsed)
    finally:
        receiver.stop()


def _spawn(role: str, env: dict[str, str], extra: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "switchboard", role, *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_worker(r: Redis, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if heartbeats.alive(r, "worker") and heartbeats.alive(r, "scheduler"):
            return
        time.sleep(0.1)
    raise RuntimeError("the worker or the scheduler did not start")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery_throughput")
    parser.add_argument("--deliveries", type=int, default=3000, help="per case")
    parser.add_argument(
        "--conversations", "--sessions", dest="conversations", type=int, default=200
    )
    parser.add_argument(
        "--db", type=int, help="data database (the next is Celery's); default: two free ones"
    )
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per case, at most")
    parser.add_argument("--celery-threads", type=int, default=8)
    parser.add_argument(
        "--endpoints", type=int, default=1, help="endpoints the conversations are spread over"
    )
    args = parser.parse_args(argv)

    databases = (
        BenchDatabases(args.db, args.db + 1) if args.db is not None else BenchDatabases.claimed()
    )
    env = databases.env(SWITCHBOARD_SCHEDULER_INTERVAL="0.05", SWITCHBOARD_LOG_LEVEL="WARNING")
    settings = Settings.from_env(env)
    r = databases.fresh()
    processes = [
        _spawn("worker", env, ["--pool", "threads", "--concurrency", str(args.celery_threads)]),
        _spawn("scheduler", env, []),
    ]
    results = []
    try:
        _wait_for_worker(r, 30)
        print(
            f"one worker process: {settings.delivery_concurrency} queues at once on its event "
            f"loop, at most {settings.endpoint_concurrency} per endpoint; {args.deliveries} "
            f"deliveries over {args.conversations} conversations and {args.endpoints} "
            "endpoint(s) per case",
            flush=True,
        )
        for label, delay in (("receiver answers at once", 0.0), ("receiver takes 200 ms", 0.2)):
            result = run_case(
                r,
                settings,
                label,
                delay,
                args.deliveries,
                args.conversations,
                args.timeout,
                args.endpoints,
            )
            results.append(result)
            note = "" if result.attempts >= result.deliveries else " (stopped at the time limit)"
            print(
                f"{label:<26} {result.attempts:>6} attempts in {result.seconds:6.2f} s = "
                f"{result.per_second:7.1f} attempts/s{note}",
                flush=True,
            )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        databases.fresh()
    return 0 if all(result.attempts >= result.deliveries for result in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
