"""`switchboard demo` on the embedded default: no REDIS_URL, its own redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import psutil

from tests.command_line import switchboard
from tests.polling import wait_until


def test_demo_runs_the_whole_pipeline_and_exits_0() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "SWITCHBOARD_"))}
    done = switchboard("demo", env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Redis: embedded" in done.stdout
    assert "on try 2 after a 503; signature ok" in done.stdout
    assert "desk [demo-user] asks for a human" in done.stdout
    assert "desk [demo-user] agent: Hi, this is Sam from support." in done.stdout
    assert 'bot_resumed: {"by": "agent"}' in done.stdout
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith(
        "demo ok: 5 messages in, 4 replies delivered in order (1 from an agent after a handover), "
        "1 after a retry"
    )


def test_a_demo_stopped_with_sigterm_leaves_nothing_running() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "SWITCHBOARD_"))}
    demo = subprocess.Popen(
        [sys.executable, "-m", "switchboard", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout or ()), daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: any(line.startswith("Switchboard: web on") for line in lines),
            timeout=60,
            what="the demo's stack to be up",
        )
        children = psutil.Process(demo.pid).children(recursive=True)
        assert len(children) >= 4  # Redis, web, worker, scheduler
        demo.terminate()
        assert demo.wait(timeout=60) == 128 + signal.SIGTERM
        wait_until(
            lambda: not any(c.is_running() and c.status() != "zombie" for c in children),
            timeout=30,
            what="every process the demo started to end",
        )
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
