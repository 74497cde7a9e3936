"""`switchboard run` with its embedded Redis: one run per data folder and per port, and
nothing left running when it is killed outright."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from switchboard.embedded_redis import free_port
from tests.command_line import switchboard
from tests.integration.stacks import STACK_SETTINGS
from tests.polling import wait_until


def _env() -> dict[str, str]:
    settings = {k: v for k, v in STACK_SETTINGS.items() if k != "REDIS_URL"}
    return {**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, **settings}


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port, folder = free_port(), tmp_path / "data"
    command = ["run", "--port", str(port), "--data-dir", str(folder)]
    with (tmp_path / "run.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "switchboard", *command],
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: _ready(port), timeout=60, what="switchboard run to be ready")
        yield process, port, folder
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def test_a_second_run_on_the_same_folder_or_port_is_refused(
    running: tuple[subprocess.Popen[bytes], int, Path], tmp_path: Path
) -> None:
    process, port, folder = running
    done = switchboard("run", "--port", str(free_port()), "--data-dir", str(folder), env=_env())
    assert done.returncode == 2
    assert done.stderr == (
        f"switchboard: {folder} is in use by another `switchboard run` (pid {process.pid}): "
        "stop it, or give another --data-dir\n"
    )
    done = switchboard("run", "--port", str(port), "--data-dir", str(tmp_path / "x"), env=_env())
    assert done.returncode == 2
    assert done.stderr == (
        f"switchboard: port {port} is in use: stop what holds it, or choose another --port\n"
    )


def test_killed_outright_it_leaves_nothing_running(
    running: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    process, _, folder = running
    children = psutil.Process(process.pid).children(recursive=True)
    assert len(children) >= 4  # the embedded Redis, web (with its processes), worker, scheduler
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    wait_until(
        lambda: not any(child.is_running() and child.status() != "zombie" for child in children),
        timeout=60,
        what="the children of the killed run to end",
    )
    with (folder / "switchboard.lock").open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the folder is free again


def test_an_embedded_redis_that_does_not_start_says_why(tmp_path: Path) -> None:
    spoiled = tmp_path / "data" / "redis" / "appendonlydir"
    spoiled.mkdir(parents=True)
    (spoiled / "appendonly.aof.manifest").write_text("garbage\n")
    done = switchboard(
        "run", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), env=_env()
    )
    assert done.returncode == 2
    log = tmp_path / "data" / "redis" / "redis.log"
    assert done.stderr.splitlines()[-1] == (
        "switchboard: the embedded Redis did not start: Invalid AOF manifest file format "
        f"(the whole log: {log})"
    )
