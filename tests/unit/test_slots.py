"""The delivery loop's counted limit: how many hold at once, who comes next, cancellation."""

from __future__ import annotations

import asyncio

from broker.core.slots import Slots


def test_no_more_than_the_count_hold_at_once_and_waiters_come_in_order() -> None:
    order: list[int] = []
    holding = 0
    most = 0

    async def hold(slots: Slots, number: int) -> None:
        nonlocal holding, most
        async with slots:
            holding += 1
            most = max(most, holding)
            order.append(number)
            await asyncio.sleep(0)
            holding -= 1

    async def steps() -> None:
        slots = Slots(3)
        await asyncio.gather(*(hold(slots, n) for n in range(20)))

    asyncio.run(steps())
    assert most == 3 and order == list(range(20))


def test_a_cancelled_waiter_gives_up_its_place_and_a_slot_handed_to_it_goes_on() -> None:
    async def steps() -> None:
        slots = Slots(1)
        await slots.__aenter__()
        gone = asyncio.ensure_future(slots.__aenter__())
        handed = asyncio.ensure_future(slots.__aenter__())
        last = asyncio.ensure_future(slots.__aenter__())
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        await slots.__aexit__(None, None, None)  # to `handed`: `gone` left its place
        handed.cancel()  # ... cancelled after the slot was handed to it
        await asyncio.sleep(0)
        assert gone.cancelled() and handed.cancelled()
        await asyncio.wait_for(last, 5)  # the slot went on to `last`
        await slots.__aexit__(None, None, None)
        async with slots:  # and is free again after
            pass

    asyncio.run(steps())
