"""Starting the web, worker and scheduler roles as child processes, and stopping them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import requests

from broker.core import defaults
from switchboard.orphans import die_with_parent


class Stack:
    """The three roles of Switchboard, each in its own process, sharing one environment."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        port: int,
        log: IO[bytes] | None = None,
        tied: bool = False,
    ) -> None:
        self.env = {**os.environ, **env}
        self.port = port
        self.log = log
        #: The processes end when the one that started them does, however it ends. Only
        #: where they are started from the main thread: Linux ties them to the thread.
        self.tied = tied
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, roles: tuple[str, ...] = ("web", "worker", "scheduler")) -> None:
        commands = {
            "web": ["web", "--host", "127.0.0.1", "--port", str(self.port)],
            "worker": ["worker"],
            "scheduler": ["scheduler"],
        }
        for role in roles:
            self.processes[role] = self.spawn(commands[role])

    def spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        output = self.log if self.log is not None else None
        return subprocess.Popen(
            [sys.executable, "-m", "switchboard", *args],
            env=self.env,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            preexec_fn=die_with_parent if self.tied else None,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /readyz says Redis, a worker and a scheduler are alive."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            for role, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"the {role} process exited with {process.returncode}")
            try:
                answer = requests.get(f"{self.url}/readyz", timeout=2)
                if answer.status_code == 200:
                    return
                last = answer.text
            except requests.RequestException as exc:
                last = str(exc)
            time.sleep(0.1)
        raise RuntimeError(f"Switchboard was not ready within {timeout:g} s: {last}")

    def exits(self) -> list[tuple[str, int]]:
        """The roles whose process has exited, with its exit code."""
        polled = ((role, process.poll()) for role, process in self.processes.items())
        return [(role, code) for role, code in polled if code is not None]

    def stop(self, timeout: float = 15.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def data_dir(path: str | None) -> Path:
    # Not one of the roles' Settings: only `switchboard run` and the commands that look for
    # the Redis it embeds read it.
    folder = path or os.environ.get("SWITCHBOARD_DATA_DIR") or defaults.DATA_DIR
    return Path(folder).resolve()
