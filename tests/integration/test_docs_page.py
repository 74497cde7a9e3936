"""The API reference page, rendered by a real browser (Debian's headless Chromium)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from switchboard.stack import Stack
from tests.prerequisites import require_chromium

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_the_reference_page_renders_every_route_in_a_browser(stack: Stack, tmp_path: Path) -> None:
    browser = require_chromium()
    shown = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path}",
            "--dump-dom",
            f"{stack.url}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    dom = shown.stdout
    assert "Switchboard" in dom and "API reference" in dom
    for path in (
        "/v1/channels/webhook/{channelId}/messages",
        "/api/webhookMessage/{botId}",
        "/v1/bots/{botId}/conversations/{sessionId}/actions",
        "/v1/dead-letters/replay",
    ):
        assert path in dom, path
    assert "<code>sender.id</code>" in dom
