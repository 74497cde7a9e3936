"""`switchboard demo` on the embedded default: no REDIS_URL, its own redis-server."""

from __future__ import annotations

import os

from tests.command_line import switchboard


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
