"""A worker on a host whose clock is ten minutes off goes by Redis's clock: its retries come
when their schedule says, for every worker, and receivers take its signatures' timestamps."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from tests.integration.stacks import own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.receivers import Answer, Receiver

#: Loaded by the worker's Python at start (`sitecustomize`): its host's clock is off.
_OFF_CLOCK = """import time

_host = time.time
time.time = lambda: _host() + {offset}
"""


@pytest.mark.parametrize("offset", [600, -600], ids=["ahead", "behind"])
def test_a_worker_whose_clock_is_off_retries_on_schedule_and_signs_in_time(
    tmp_path: Path, receiver: Receiver, offset: int
) -> None:
    require_redis()
    hook = tmp_path / "off-clock"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_OFF_CLOCK.format(offset=offset))
    receiver.behaviour = lambda hit: Answer(500 if hit.try_number < 3 else 200)
    with own_stack(tmp_path / "stack.log", SWITCHBOARD_RETRY_SCHEDULE="0,2,2") as own:
        own.start("web")
        own.start("scheduler")
        python_path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
        own.start("worker", own.env(PYTHONPATH=python_path))
        own.wait_ready()
        channel = own.api.echo_channel(receiver.url)
        assert own.api.send(channel, "u1", "hi").status_code == 202
        wait_until(lambda: receiver.delivered(), timeout=30, what="the third attempt")
    tries = [hit.at for hit in receiver.hits]
    gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
    # 2 s each, give or take the jitter; a worker that went by its own clock waited
    # ten minutes ahead, or did not wait at all behind.
    assert len(gaps) == 2 and all(1.4 < gap < 10 for gap in gaps), gaps
    for hit in receiver.hits:
        assert abs(int(hit.headers["webhook-timestamp"]) - hit.at) < 5, hit.headers
    assert "goes by Redis's clock" in (tmp_path / "stack.log").read_text()
