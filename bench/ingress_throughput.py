"""How many user messages a second the ingress (`switchboard web`) accepts.

    python -m bench.ingress_throughput [--seconds S] [--clients C] [--db D]

Starts `switchboard web` (gunicorn, its default workers and threads) against
two databases of its own on the local Redis (127.0.0.1:6379: free ones, or `--db` and
the one after it; flushed first), with no worker, so only the ingress is measured: authenticate,
validate, queue in Redis, answer 202. C client processes post messages over
keep-alive connections for S seconds, twice: every message from a new conversation
(each one enqueues a bot turn, the dearest case), then all from 20 conversations
(most find a turn already pending and enqueue nothing). Loopback only; it stops by
itself.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import subprocess
import sys
import time
from collections.abc import Sequence

from bench.databases import BenchDatabases
from broker.bots import bot_store
from broker.channels import channel_store
from broker.core.settings import Settings
from switchboard.embedded_redis import free_port


def _client(
    port: int, path: str, token: str, seconds: float, prefix: str, conversations: int
) -> list[float]:
    """Post for `seconds`; returns each accepted request's latency in seconds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        conversation = f"{prefix}-{n % conversations if conversations else n}"
        body = json.dumps(
            {"conversationId": conversation, "message": {"textMessage": {"text": f"m{n}"}}}
        )
        started = time.monotonic()
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        answer.read()
        if answer.status != 202:
            raise RuntimeError(f"the ingress answered {answer.status}")
        latencies.append(time.monotonic() - started)
        n += 1
    connection.close()
    return latencies


def _run_case(
    port: int, path: str, token: str, seconds: float, clients: int, conversations: int
) -> tuple[int, float, float, float]:
    with multiprocessing.Pool(clients) as pool:
        started = time.monotonic()
        results = pool.starmap(
            _client,
            [
                (port, path, token, seconds, f"c{i}-{time.time_ns()}", conversations)
                for i in range(clients)
            ],
        )
        elapsed = time.monotonic() - started
    latencies = sorted(x for result in results for x in result)
    count = len(latencies)
    return count, elapsed, latencies[count // 2], latencies[int(count * 0.99)]


def _wait_for_web(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("switchboard web did not start")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingress_throughput")
    parser.add_argument("--seconds", type=float, default=5.0, help="per case")
    parser.add_argument("--clients", type=int, default=8, help="client processes")
    parser.add_argument(
        "--db", type=int, help="data database (the next is Celery's); default: two free ones"
    )
    args = parser.parse_args(argv)

    databases = (
        BenchDatabases(args.db, args.db + 1) if args.db is not None else BenchDatabases.claimed()
    )
    env = databases.env(SWITCHBOARD_RATE_LIMIT="0")
    settings = Settings.from_env(env)
    r = databases.fresh()
    bot = bot_store.create(r, "bench", {"template": "echo"})
    channel = channel_store.create(r, settings, bot["id"], "http://127.0.0.1:9/hook")
    path = f"/v1/channels/webhook/{channel['id']}/messages"
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "switchboard", "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_web(port, 30)
        print(
            f"switchboard web (its defaults), {args.clients} client processes, "
            f"{args.seconds:g} s a case"
        )
        for label, conversations in (
            ("every message a new conversation", 0),
            ("20 conversations", 20),
        ):
            count, elapsed, p50, p99 = _run_case(
                port, path, channel["accessToken"], args.seconds, args.clients, conversations
            )
            print(
                f"{label:<34} {count / elapsed:7.0f} messages/s  "
                f"(p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms)",
                flush=True,
            )
    finally:
        web.terminate()
        web.wait(timeout=15)
        databases.fresh()
    return 0


if __name__ == "__main__":
    sys.exit(main())
