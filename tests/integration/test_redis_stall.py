"""A Redis that stalls (takes connections and commands, answers nothing) under `switchboard
web`: the message routes answer `503 unavailable` with `Retry-After` within a Redis timeout,
a burst of them too, and /healthz promptly; once Redis answers again, messages are taken
(`web/redis_gate.py`, SWITCHBOARD_WEB_REDIS_TIMEOUT)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.stacks import OwnStack, own_stack
from tests.polling import wait_until
from tests.redis_databases import HOST, PORT, db
from tests.stalling_proxy import StallingProxy

#: The web's Redis timeout in this test: a stall is noticed within it.
TIMEOUT = 0.5
#: What an answer during the stall may take at most: one Redis timeout, and then some.
PROMPT = 1.5


@pytest.fixture
def proxy() -> Iterator[StallingProxy]:
    made = StallingProxy(HOST, PORT)
    yield made
    made.close()


@pytest.fixture
def stack(proxy: StallingProxy, tmp_path: Path) -> Iterator[OwnStack]:
    with own_stack(tmp_path / "stack.log") as own:
        env = own.env(
            REDIS_URL=f"redis://127.0.0.1:{proxy.port}/{db('own')}",
            SWITCHBOARD_WEB_REDIS_TIMEOUT=str(TIMEOUT),
        )
        own.start("web", env)
        wait_until(lambda: _answers(own.api.base + "/healthz"), timeout=30, what="the web")
        yield own


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _send(channel: dict[str, Any], text: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    answer = requests.post(
        channel["messagesUrl"],
        json={"conversationId": "stalled", "message": {"textMessage": {"text": text}}},
        headers={"Authorization": f"Bearer {channel['accessToken']}"},
        timeout=30,
    )
    return answer, time.monotonic() - started


def _assert_prompt_unavailable(answer: requests.Response, took: float) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "unavailable"
    assert int(answer.headers["Retry-After"]) > 0
    assert took < PROMPT, f"answered after {took:.2f} s"


def test_a_stalled_redis_gets_prompt_503s_then_messages_again(
    stack: OwnStack, proxy: StallingProxy
) -> None:
    channel = stack.api.echo_channel("http://127.0.0.1:9/hook")
    assert _send(channel, "before")[0].status_code == 202

    proxy.stall()
    stalled_at = time.monotonic()
    _assert_prompt_unavailable(*_send(channel, "first"))
    with ThreadPoolExecutor(12) as pool:
        burst = list(pool.map(lambda n: _send(channel, f"burst {n}"), range(24)))
    for answer, took in burst:
        _assert_prompt_unavailable(answer, took)
    started = time.monotonic()
    assert requests.get(stack.api.base + "/healthz", timeout=30).status_code == 200
    assert time.monotonic() - started < PROMPT
    # Past the gate's window, a probe of a stalled Redis is a prompt 503 too.
    while time.monotonic() - stalled_at < 3.0:
        _assert_prompt_unavailable(*_send(channel, "still stalled"))

    proxy.flow()
    wait_until(
        lambda: _send(channel, "after")[0].status_code == 202,
        timeout=10,
        interval=0.2,
        what="a message taken once Redis answers again",
    )
