"""A counted limit for the tasks of one event loop, like asyncio.Semaphore, in constant time.

asyncio.Semaphore (Python 3.11) scans its waiters on every acquire and removes a waiter
from the middle of a deque on every wake. The delivery loop has a waiter per queue held
back by its endpoint's limit: with a thousand conversations on one endpoint, that scan
took a twentieth of a worker's CPU at full load.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class Slots:
    """At most `count` holders at once; the others wait, first come first served. A slot
    that is let go goes straight to the first waiter."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        slot = asyncio.get_running_loop().create_future()
        self._waiters.append(slot)
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():
                self._let_go()  # handed a slot as it was cancelled: pass it on
            raise

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._let_go()

    def _let_go(self) -> None:
        while self._waiters:
            slot = self._waiters.popleft()
            if not slot.done():  # a waiter that was cancelled has gone
                slot.set_result(None)
                return
        self._free += 1
