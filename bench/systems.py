"""The systems the benchmark compares, each started as real processes on one local Redis:
Switchboard (`switchboard web`, a worker, the scheduler) and the plain recipe (Flask under
gunicorn's threaded worker, a Celery worker)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import requests

from switchboard.embedded_redis import free_port

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef0123456789"
#: gunicorn workers of each system's web process.
WEB_WORKERS = 2


def system_redis_server() -> str:
    """A redis-server from the system's PATH, as in production, if there is one."""
    return shutil.which("redis-server", path="/usr/local/bin:/usr/bin:/bin") or ""


@dataclass
class Target:
    """Where the load goes: the messages route, its token, and a slow channel's route."""

    port: int
    path: str
    token: str
    slow_path: str = ""
    slow_token: str = ""


@dataclass
class System:
    name: str
    redis_url: str
    receiver_url: str
    log: IO[bytes]
    settings: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _spawn(self, role: str, args: list[str], env: Mapping[str, str]) -> None:
        self.processes[role] = subprocess.Popen(
            args, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT
        )

    def start(self) -> None:
        raise NotImplementedError

    def target(
        self, with_slow_channel: bool = False, definition: dict[str, Any] | None = None
    ) -> Target:
        raise NotImplementedError

    def pids(self) -> dict[str, int]:
        return {role: process.pid for role, process in self.processes.items()}

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _wait_for(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for role, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{self.name}: the {role} process exited")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready within {timeout:g} s")


@dataclass
class Switchboard(System):
    #: Worker processes (`switchboard worker`) started.
    workers: int = 1

    def start(self) -> None:
        env = {
            "REDIS_URL": self.redis_url,
            "SWITCHBOARD_BROKER_URL": self.redis_url.rsplit("/", 1)[0] + "/1",
            "SWITCHBOARD_ADMIN_TOKEN": ADMIN_TOKEN,
            "SWITCHBOARD_OUTBOUND_ALLOWLIST": "127.0.0.0/8",
            "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "SWITCHBOARD_RATE_LIMIT": "1000000",
            "SWITCHBOARD_RATE_LIMIT_BURST": "1000000",
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
            **self.settings,
        }
        switchboard = [sys.executable, "-m", "switchboard"]
        web = ["web", "--host", "127.0.0.1", "--port", str(self.port)]
        self._spawn("web", [*switchboard, *web, "--workers", str(WEB_WORKERS)], env)
        for n in range(self.workers):
            role = "worker" if n == 0 else f"worker-{n + 1}"
            self._spawn(role, [*switchboard, "worker"], env)
        self._spawn("scheduler", [*switchboard, "scheduler"], env)
        self._wait_for(f"http://127.0.0.1:{self.port}/readyz")

    def target(
        self, with_slow_channel: bool = False, definition: dict[str, Any] | None = None
    ) -> Target:
        """A new bot (the echo template unless `definition` is given) and its channel."""
        base = f"http://127.0.0.1:{self.port}"
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        bot = requests.post(
            f"{base}/v1/bots",
            json={"name": "bench", "definition": definition or {"template": "echo"}},
            headers=admin,
            timeout=10,
        ).json()

        def channel(url: str) -> dict[str, str]:
            answer = requests.post(
                f"{base}/v1/bots/{bot['id']}/channels/webhook",
                json={"webhookUrl": url},
                headers=admin,
                timeout=10,
            )
            answer.raise_for_status()
            found: dict[str, str] = answer.json()
            return found

        main = channel(self.receiver_url)
        target = Target(self.port, main["messagesUrl"].removeprefix(base), main["accessToken"])
        if with_slow_channel:
            slow = channel(self.receiver_url.replace("/hook", "/slow"))
            target.slow_path = slow["messagesUrl"].removeprefix(base)
            target.slow_token = slow["accessToken"]
        return target


class PlainRecipe(System):
    def start(self) -> None:
        env = {"PLAIN_REDIS_URL": self.redis_url, "PLAIN_RECEIVER_URL": self.receiver_url}
        self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(WEB_WORKERS),
                # What such a recipe is served with: gunicorn's threaded worker with
                # keep-alive. Its /healthz is the second yardstick of the ratios.
                "--threads",
                "8",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "bench.plain_recipe:app",
            ],
            env,
        )
        self._spawn(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.plain_recipe:celery",
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
            ],
            env,
        )
        self._wait_for(f"http://127.0.0.1:{self.port}/healthz")

    def target(
        self, with_slow_channel: bool = False, definition: dict[str, Any] | None = None
    ) -> Target:
        return Target(self.port, "/v1/channels/webhook/plain/messages", "none")
