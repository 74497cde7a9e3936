"""`switchboard run`: web, a worker and the scheduler in one command."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from broker.core.connection import check_url
from broker.core.errors import SwitchboardError
from broker.core.settings import Settings
from switchboard.embedded_redis import EMBEDDED_URL_FILE, EmbeddedRedis
from switchboard.stack import Stack, data_dir
from web import check_settings

log = logging.getLogger("switchboard")

#: A role that exits is started again at once, unless it was already started again this
#: many times within the window (seconds): then after RESTART_DELAY, and so on for as long
#: as it exits. The other roles go on meanwhile: a worker that Redis's trouble takes down
#: (a failover, a full Redis) must not take the web process, which answers 503, with it.
RESTARTS = 3
RESTART_WINDOW = 60.0
RESTART_DELAY = 10.0


class Supervisor:
    """Starts again the roles of a stack that exited, as a supervisor would (docker-compose's
    restart policy): a worker's broker connection that broke when Redis restarted can take
    the process down."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.restarts: dict[str, list[float]] = {}
        self.due: dict[str, float] = {}  # roles to start again, and when

    def tend(self, now: float) -> None:
        for role, code in self.stack.exits():
            if role in self.due:
                continue
            recent = [at for at in self.restarts.get(role, []) if at > now - RESTART_WINDOW]
            delay = RESTART_DELAY if len(recent) >= RESTARTS else 0.0
            log.log(
                logging.ERROR if delay else logging.WARNING,
                "the %s process exited with %d; starting it again in %g s",
                role,
                code,
                delay,
            )
            self.restarts[role] = [*recent, now]
            self.due[role] = now + delay
        for role in [role for role, at in self.due.items() if at <= now]:
            del self.due[role]
            self.stack.start((role,))


#: The file of the data folder a `switchboard run` holds a lock on while it runs.
LOCK_FILE = "switchboard.lock"


def running_in(folder: Path) -> bool:
    """Whether a `switchboard run` holds the data folder now."""
    try:
        with (folder / LOCK_FILE).open("r") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False  # the lock was free: closing the file let it go


def _check_port_free(port: int) -> None:
    """Bind the web role's port as gunicorn will (with SO_REUSEADDR), and let it go: a port
    in use would make the web role exit again and again, the rest running on without it."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise SwitchboardError(
                f"port {port} is in use: stop what holds it, or choose another --port"
            ) from None


@contextlib.contextmanager
def _holding(folder: Path) -> Iterator[None]:
    """Hold the data folder while this runs: two embedded Redis servers writing one
    append-only file would spoil it. The lock goes with the process, however it ends."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock_file = (folder / LOCK_FILE).open("a+")
    except OSError as exc:
        raise SwitchboardError(
            f"the data folder {folder} cannot be used ({exc.strerror}): give another --data-dir"
        ) from None
    with lock_file as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.seek(0)
            raise SwitchboardError(
                f"{folder} is in use by another `switchboard run` (pid "
                f"{held.read().strip() or 'unknown'}): stop it, or give another --data-dir"
            ) from None
        held.truncate(0)
        held.write(f"{os.getpid()}\n")
        held.flush()
        yield


def run_all(port: int, data_path: str | None) -> int:
    settings = Settings.from_env()
    check_settings(settings)  # the roles would refuse them, again and again: say so first
    check_url(settings.redis_url)
    _check_port_free(port)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    # A hang-up (its terminal closed) stops it as TERM and Ctrl-C do, roles before Redis.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    if os.environ.get("REDIS_URL"):
        log.info("Redis: %s (from REDIS_URL)", Settings.from_env().redis_url)
        return _run_stack(port, {}, stopping)
    folder = data_dir(data_path)
    with _holding(folder):
        embedded = EmbeddedRedis(folder / "redis", tied=True)
        origin = embedded.start()
        log.info(
            "Redis: embedded, %s, port %d, data in %s", origin, embedded.port, embedded.data_dir
        )
        # Where the operator commands (`switchboard status`, ...) run in this folder find it.
        running = folder / EMBEDDED_URL_FILE
        running.write_text(f"{embedded.url}\n")
        try:
            return _run_stack(port, {"REDIS_URL": embedded.url}, stopping, embedded)
        finally:
            running.unlink(missing_ok=True)
            embedded.stop()
            log.info("embedded Redis stopped")


def _run_stack(
    port: int,
    env: dict[str, str],
    stopping: threading.Event,
    embedded: EmbeddedRedis | None = None,
) -> int:
    """The three roles, started again when they exit, and the embedded Redis, until
    `stopping` is set."""
    env.setdefault(
        "SWITCHBOARD_PUBLIC_URL",
        os.environ.get("SWITCHBOARD_PUBLIC_URL", f"http://127.0.0.1:{port}"),
    )
    stack = Stack(env, port=port, tied=True)
    try:
        stack.start()
        log.info(
            "Switchboard on http://127.0.0.1:%d (web, worker, scheduler); Ctrl-C stops it", port
        )
        supervisor = Supervisor(stack)
        while not stopping.wait(0.5):
            if embedded and embedded.exited():
                log.error("the embedded Redis exited; starting it again (its data is on disk)")
                embedded.start()
            supervisor.tend(time.monotonic())
        return 0
    finally:
        stack.stop()
