"""An asyncio event loop running in a thread of its own, for code on other threads to hand
coroutines to: a worker process's deliveries and its bots' API calls share one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

from broker.core.defaults import LOOP_MARK_EVERY
from broker.core.heartbeats import Progress

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        # uvloop: the delivery loop's many connections cost less CPU on it than on asyncio's
        # own loop (README, Performance).
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coroutine` on the loop and wait for its result (not from the loop's thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call_soon(self, function: Callable[..., object], *args: Any) -> None:
        self.loop.call_soon_threadsafe(function, *args)

    def report_to(self, progress: Progress, every: float = LOOP_MARK_EVERY) -> None:
        """Mark `progress` with the thread's name every `every` seconds while the loop goes
        round: a loop held up by a call that blocks stops its process's heartbeat."""

        async def marking() -> None:
            while True:
                progress.mark(self._thread.name)
                await asyncio.sleep(every)

        self._marking = asyncio.run_coroutine_threadsafe(marking(), self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
