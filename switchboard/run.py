"""`switchboard run`: web, a worker and the scheduler in one command."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType

from broker.core.settings import Settings
from switchboard.embedded_redis import EmbeddedRedis
from switchboard.stack import Stack, data_dir
from web import check_settings

log = logging.getLogger("switchboard")

#: A role that exits is started again, unless it was already started again this many times
#: within the window (seconds): then it fails for good, and everything stops.
RESTARTS = 3
RESTART_WINDOW = 60.0


def run_all(port: int, data_path: str | None) -> int:
    check_settings(Settings.from_env())  # the web role would refuse them: say so first
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
        restarts: dict[str, list[float]] = {}
        while not stopping.wait(0.5):
            exited = stack.first_exit()
            if not exited:
                continue
            role, code = exited
            now = time.monotonic()
            recent = [at for at in restarts.get(role, []) if at > now - RESTART_WINDOW]
            if len(recent) >= RESTARTS:
                log.error("the %s process keeps exiting (last with %d); stopping", role, code)
                return 1
            # As a supervisor would (docker-compose's restart policy): a worker's broker
            # connection that broke when Redis restarted can take the process down.
            log.warning("the %s process exited with %d; starting it again", role, code)
            restarts[role] = [*recent, now]
            stack.start((role,))
        return 0
    finally:
        stack.stop()
        if embedded:
            embedded.stop()
            log.info("embedded Redis stopped")
