"""The pizza bot (examples/bots/pizza.yaml) for the whole-path benchmark, as written but for
its not-understood answer, which quotes the message (`You said: m<n>`) so that the receiver
can tell which message each reply answers. Every load message (`m<n>`) goes through the
intent matcher and lands there: the engine's cost per message, measured end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from broker.bots import documents

PIZZA = Path(__file__).parents[1] / "examples" / "bots" / "pizza.yaml"


def definition() -> dict[str, Any]:
    found: dict[str, Any] = documents.load(PIZZA)
    answer = found["states"][found["fallbackState"]]["say"][0]
    answer["text"] = "Sorry, I did not get that. You said: {{lastMessage}}"
    return found
