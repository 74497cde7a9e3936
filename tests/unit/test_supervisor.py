"""`switchboard run`'s supervisor: a role that exits is started again, later and later, and
the others go on."""

from __future__ import annotations

from switchboard.run import RESTART_DELAY, RESTARTS, Supervisor
from switchboard.stack import Stack


class FakeStack(Stack):
    """A stack whose worker exits each time it is started."""

    def __init__(self) -> None:
        self.dead = {"worker"}
        self.started: list[tuple[str, float]] = []
        self.now = 0.0

    def exits(self) -> list[tuple[str, int]]:
        return [(role, 1) for role in sorted(self.dead)]

    def start(self, roles: tuple[str, ...] = ("web", "worker", "scheduler")) -> None:
        self.started += [(role, self.now) for role in roles]


def test_a_role_that_keeps_exiting_is_started_again_later_and_never_stops_the_rest() -> None:
    stack = FakeStack()
    supervisor = Supervisor(stack)
    for tick in range(60):  # half a minute, a tick every half second
        stack.now = tick * 0.5
        supervisor.tend(stack.now)
    times = [at for role, at in stack.started if role == "worker"]
    assert times[:RESTARTS] == [0.0, 0.5, 1.0]
    assert [b - a for a, b in zip(times[RESTARTS - 1 :], times[RESTARTS:], strict=False)] == [
        RESTART_DELAY + 0.5
    ] * (len(times) - RESTARTS)
    assert {role for role, _ in stack.started} == {"worker"}
