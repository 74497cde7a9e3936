"""When the delivery loop's bookkeeping is written: soon for what changes something, later
for what only confirms, so that a light load gathers many deliveries into one write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from broker.core.settings import Settings
from broker.delivery.bookkeeping import FLUSH_LATER, FLUSH_SOON, Bookkeeping


class _Unused:
    """Nothing is written in these tests: only when it would be."""

    index_shards = 1

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"written too early: {name}")


def _writes_in(book: Bookkeeping) -> float:
    assert book._timer is not None
    return book._timer.when() - asyncio.get_running_loop().time()


def _book(settings: Settings) -> Bookkeeping:
    return Bookkeeping(settings, _Unused(), lambda endpoint_id, state: None)  # type: ignore[arg-type]


def test_successes_and_emptied_queues_wait_for_the_later_write(settings: Settings) -> None:
    async def check() -> None:
        book = _book(settings)
        book.outcome("ch_1", 1.0, True, "")
        book.done("q1|ch_1#t")
        assert FLUSH_SOON < _writes_in(book) <= FLUSH_LATER
        book._timer.cancel()  # type: ignore[union-attr]

    asyncio.run(check())


def test_a_failure_or_a_queue_due_again_brings_the_write_forward(settings: Settings) -> None:
    async def check() -> None:
        changes: list[Callable[[Bookkeeping], None]] = [
            lambda book: book.outcome("ch_1", 2.0, False, "500"),
            lambda book: book.due("q2|ch_1#t", 9.0),
        ]
        for change in changes:
            book = _book(settings)
            book.outcome("ch_1", 1.0, True, "")
            change(book)
            assert _writes_in(book) <= FLUSH_SOON
            book.done("q1|ch_1#t")  # what comes after does not put it off again
            assert _writes_in(book) <= FLUSH_SOON
            book._timer.cancel()  # type: ignore[union-attr]

    asyncio.run(check())


class _SlowRedis:
    """Writes that end only once `go` is set."""

    index_shards = 1

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.written: list[tuple[Any, ...]] = []

    async def call(self, *command: Any) -> int:
        await self.go.wait()
        self.written.append(command)
        return 1


def test_a_flush_ends_only_once_the_write_under_way_has(settings: Settings) -> None:
    async def check() -> None:
        redis = _SlowRedis()
        book = Bookkeeping(settings, redis, lambda endpoint_id, state: None)  # type: ignore[arg-type]
        book.done("q1|ch_1#t")
        assert book._timer is not None
        book._timer.cancel()
        book._start_flush()  # as when its time comes
        await asyncio.sleep(0)
        flushing = asyncio.create_task(book.flush())
        for _ in range(3):
            await asyncio.sleep(0)
        assert not flushing.done()
        redis.go.set()
        await flushing
        assert redis.written == [("ZREM", "sb:due", "q1|ch_1#t")]

    asyncio.run(check())
