"""Changing a record (a Redis hash) that other requests may change at the same time, by
read, change and compare-and-set: the change is written only while every field it was
computed from still holds what was read (`record_change.lua`), else read again and made
again; and a record that was removed meanwhile is not written again. Two management calls
on one channel at once (a new URL and a secret rotation, say) then both take effect,
whatever their order, and a check made against the record read (a connect timeout within
the total) still holds when it is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from broker.core import scripts
from broker.core.connection import HashFields, Redis
from broker.core.errors import Conflict

#: How many times a change is read and tried again when another request changed a field
#: it changes meanwhile.
_TRIES = 10

#: The script's answers.
_CHANGED, _GONE = 1, 0


def change(
    r: Redis, key: str, changed: Callable[[dict[str, str]], HashFields | Mapping[str, str]]
) -> dict[str, str] | None:
    """Read the record at `key`, compute its fields with `changed` from what was read (it
    may raise to refuse the change), and write those that differ. The record as written;
    None when there is none."""
    for _ in range(_TRIES):
        read = r.hgetall(key)
        if not read:
            return None
        wanted = {str(field): str(value) for field, value in changed(read).items()}
        if all(read.get(field) == value for field, value in wanted.items()):
            return read
        args = [
            part for field, value in wanted.items() for part in (field, read.get(field, ""), value)
        ]
        outcome = scripts.run(r, "record_change", [key], args)
        if outcome == _CHANGED:
            return {**read, **wanted}
        if outcome == _GONE:
            return None
    raise Conflict("the record kept being changed by other requests meanwhile: try again")
