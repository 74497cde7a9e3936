"""Redis connections: enough of them for every thread of a worker process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from broker.core.connection import connect
from broker.core.defaults import DELIVERY_CONCURRENCY
from tests.app_redis import app_url


def test_more_threads_than_redis_py_s_default_pool_all_get_a_connection() -> None:
    r = connect(app_url())
    threads = DELIVERY_CONCURRENCY + 30  # above redis-py's default limit of 100
    with ThreadPoolExecutor(threads) as pool:
        # Each holds its connection for a moment, so they overlap.
        answers = list(
            pool.map(lambda n: r.blpop([f"sb:test:empty:{n}"], timeout=0.3), range(threads))
        )
    assert answers == [None] * threads
