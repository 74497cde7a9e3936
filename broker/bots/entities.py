"""Entities: what a text names that a bot keeps, found when an intent matches.

The built-in ones are `number`, `email`, `phone` and `date` (read as typed input is); a
definition adds lists, each value with its synonyms.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from broker.bots import inputs

BUILT_IN = ("number", "email", "phone", "date")


def options_of(values: list[str] | dict[str, list[str]]) -> dict[str, list[str]]:
    """A list entity's values, each with its synonyms (a plain list has none)."""
    if isinstance(values, dict):
        return {value: list(synonyms) for value, synonyms in values.items()}
    return {value: [] for value in values}


def find(
    name: str,
    text: str,
    *,
    lists: Mapping[str, Mapping[str, Sequence[str]]],
    today: dt.date | None,
) -> Any:
    """The value of entity `name` in `text`, or None."""
    if name in lists:
        return inputs.choice(text, lists[name])
    if name == "number":
        return inputs.number(text)
    if name == "email":
        return inputs.email(text)
    if name == "phone":
        return inputs.phone(text)
    if name == "date":
        return inputs.date(text, today)
    return None
