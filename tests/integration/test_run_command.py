"""`switchboard run` with its embedded Redis: one run per data folder and per port, nothing
left running when it is killed outright, Ctrl-C stopping the roles before Redis, an
embedded Redis that dies started again, and the operator commands finding it."""

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

from broker.core import heartbeats
from switchboard.embedded_redis import free_port
from tests.command_line import switchboard
from tests.integration.stacks import STACK_SETTINGS, own_stack
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
        # A process group of its own, as a terminal gives the command it runs.
        process = subprocess.Popen(
            [sys.executable, "-m", "switchboard", *command],
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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
    # Its URL file is left: the operator commands do not take it for a running Redis.
    assert (folder / "redis.url").exists()
    done = switchboard("status", env={**_env(), "SWITCHBOARD_DATA_DIR": str(folder)})
    assert done.returncode == 2
    assert done.stderr == (
        f"switchboard: REDIS_URL is not set, and the `switchboard run` that wrote "
        f"{folder}/redis.url is not running any more: start it again, or set REDIS_URL\n"
    )


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


def _embedded_redis(process: subprocess.Popen[bytes]) -> psutil.Process:
    (server,) = [
        child
        for child in psutil.Process(process.pid).children()
        if "redis-server" in " ".join(child.cmdline())
    ]
    return server


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "hang-up"])
def test_ctrl_c_or_a_hang_up_stops_the_roles_then_redis(
    running: tuple[subprocess.Popen[bytes], int, Path], tmp_path: Path, signum: int
) -> None:
    """Ctrl-C sends SIGINT to the terminal's whole process group: the roles and the embedded
    Redis must not take it themselves, or Redis stops under roles still at work. Closing the
    terminal sends SIGHUP, which ended the run at once."""
    process, _, folder = running
    children = psutil.Process(process.pid).children(recursive=True)
    os.killpg(process.pid, signum)
    assert process.wait(timeout=60) == 0
    assert not any(child.is_running() and child.status() != "zombie" for child in children)
    redis_log = (folder / "redis" / "redis.log").read_text()
    assert "Received SIGTERM" in redis_log and "Received SIGINT" not in redis_log
    assert "Traceback" not in (tmp_path / "run.log").read_text()


def test_the_scheduler_stops_cleanly_on_a_hang_up(tmp_path: Path) -> None:
    """Before, a hang-up ended it at once: no "scheduler stopped", exit 129."""
    log = tmp_path / "scheduler.log"
    with own_stack(log, SWITCHBOARD_LOG_LEVEL="INFO") as own:
        scheduler = own.start("scheduler").processes["scheduler"]
        wait_until(lambda: heartbeats.alive(own.data, "scheduler"), what="the scheduler")
        scheduler.send_signal(signal.SIGHUP)
        assert scheduler.wait(timeout=30) == 0
    assert "scheduler stopped" in log.read_text()


def test_an_embedded_redis_that_dies_is_started_again(
    running: tuple[subprocess.Popen[bytes], int, Path], tmp_path: Path
) -> None:
    process, port, _ = running
    server = _embedded_redis(process)
    server.kill()
    wait_until(lambda: not _ready(port), timeout=30, what="the run to see Redis gone")
    wait_until(lambda: _ready(port), timeout=60, what="Redis started again")
    assert _embedded_redis(process).pid != server.pid
    assert "the embedded Redis exited; starting it again" in (tmp_path / "run.log").read_text()


def test_the_operator_commands_find_the_embedded_redis(
    running: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    """Without REDIS_URL, where the run's data folder is the default one."""
    process, _, folder = running
    url = (folder / "redis.url").read_text().strip()
    listening = {
        c.laddr.port for c in _embedded_redis(process).net_connections() if c.status == "LISTEN"
    }
    assert url in {f"redis://127.0.0.1:{port}/0" for port in listening}
    env = {**_env(), "SWITCHBOARD_DATA_DIR": str(folder)}
    done = switchboard("status", "--json", env=env)
    # 0: a worker and the scheduler are alive, in that Redis.
    assert done.returncode == 0, done.stdout + done.stderr
    said = f"switchboard: REDIS_URL is not set: using {url}, from {folder}/redis.url\n"
    assert done.stderr == said
    process.terminate()
    assert process.wait(timeout=60) == 0
    assert not (folder / "redis.url").exists()
