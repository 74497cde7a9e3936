"""How the core asks for work to be done elsewhere; the Celery app implements it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TaskSender(Protocol):
    """Best effort: a task that cannot be sent is logged, not raised. The work it points to is
    already in Redis with a time on a schedule, so the scheduler hands it out anyway."""

    #: The list of `REDIS_URL`'s Redis that `bot_turn` pushes the conversation key onto,
    #: where a script may push it there itself and save the round trip; None where a
    #: script cannot (a Redis Cluster: the list is in another slot) or a turn is not woken
    #: that way.
    ready_list: str | None

    def bot_turn(self, conversation_key: str) -> None:
        """Run the waiting messages of one conversation."""

    def deliver(self, queues: Sequence[str]) -> None:
        """Work through the ready heads of these delivery queues ("<conversation>|<endpoint>")."""
