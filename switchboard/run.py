"""`switchboard run`: web, a worker and the scheduler in one command."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from broker.core.settings import Settings
from switchboard.embedded_redis import EmbeddedRedis
from switchboard.stack import Stack, data_dir

log = logging.getLogger("switchboard")


def run_all(port: int, data_path: str | None) -> int:
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    env: dict[str, str] = {}
    embedded: EmbeddedRedis | None = None
    if os.environ.get("REDIS_URL"):
        log.info("Redis: %s (from REDIS_URL)", Settings.from_env().redis_url)
    else:
        embedded = EmbeddedRedis(data_dir(data_path) / "redis")
        origin = embedded.start()
        env["REDIS_URL"] = embedded.url
        log.info(
            "Redis: embedded, %s, port %d, data in %s", origin, embedded.port, embedded.data_dir
        )
    env.setdefault(
        "SWITCHBOARD_PUBLIC_URL",
        os.environ.get("SWITCHBOARD_PUBLIC_URL", f"http://127.0.0.1:{port}"),
    )
    stack = Stack(env, port=port)
    try:
        stack.start()
        log.info(
            "Switchboard on http://127.0.0.1:%d (web, worker, scheduler); Ctrl-C stops it", port
        )
        while not stopping.wait(0.5):
            exited = stack.first_exit()
            if exited:
                log.error("the %s process exited with %d; stopping", *exited)
                return 1
        return 0
    finally:
        stack.stop()
        if embedded:
            embedded.stop()
            log.info("embedded Redis stopped")
