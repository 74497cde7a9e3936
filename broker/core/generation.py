"""The generation of the settings bot turns read (bots' definitions, their offloading
endpoints, channels): one value in Redis, a new random one after every change of them. A
worker keeps what it read until the value changes, and reads it with each turn's own
reads, so a change is seen by the first turn after it, at no extra round trip. Random,
not counted: a Redis that lost its data and counted up again could name an old one."""

from __future__ import annotations

from broker.core import ids, keys
from broker.core.connection import Pipeline, Redis


def move_on(r: Redis | Pipeline) -> None:
    """Say that a bot, its offloading or a channel changed (after the change is written)."""
    r.set(keys.SETTINGS_GENERATION, ids.random_hex(8))


def read(pipe: Pipeline) -> None:
    """Queue the read of the generation (None until anything changed)."""
    pipe.get(keys.SETTINGS_GENERATION)
