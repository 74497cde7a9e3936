"""Stand-ins for the parts around the core, for unit tests."""

from __future__ import annotations

from collections.abc import Sequence


class RecordingSender:
    """A TaskSender that remembers what it was asked to do."""

    def __init__(self) -> None:
        self.turns: list[str] = []
        self.deliveries: list[str] = []

    def bot_turn(self, conversation_key: str) -> None:
        self.turns.append(conversation_key)

    def deliver(self, queues: Sequence[str]) -> None:
        self.deliveries.extend(queues)
