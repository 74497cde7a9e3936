"""One slow endpoint never holds the others back."""

from __future__ import annotations

import time

from broker.core.connection import Redis
from tests.integration.stacks import Api
from tests.polling import wait_until
from tests.receivers import Answer, ReceiverFactory, wait_delivered


def test_a_receiver_that_hangs_for_channel_a_does_not_slow_channel_b(
    api: Api, data: Redis, make_receiver: ReceiverFactory
) -> None:
    hanging = make_receiver(lambda hit: Answer(200, delay=20))
    quick = make_receiver()
    channel_a = api.echo_channel(hanging.url, totalTimeout=6, retrySchedule=[0, 1, 1])
    channel_b = api.echo_channel(quick.url)
    # Far more of A's conversations than a worker process has Celery threads.
    for n in range(80):
        assert api.send(channel_a, f"a-{n}", "hello").status_code == 202

    def hanging_attempts() -> int:
        return sum(1 for _ in data.scan_iter(match=f"sb:*:fifolock:{channel_a['id']}"))

    wait_until(lambda: hanging_attempts() >= 40, what="A's attempts to hang")

    started = time.time()
    for n in range(5):
        assert api.send(channel_b, f"b-{n}", "hello").status_code == 202
    wait_delivered(quick, 5, "B's replies")
    # Within moments (a loaded machine's), while A's attempts hang for 6 s each.
    assert max(hit.at for hit in quick.delivered()) - started < 2.0
    assert hanging.hits == []  # A still hangs
