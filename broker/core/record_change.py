"""Changing a record (a Redis hash) that other requests may change at the same time, by
read, change and compare-and-set: only the fields that differ from what was read are
written, each only while it still holds what was read (`record_change.lua`), and a record
that was removed meanwhile is not written again. Two management calls on one channel at
once (a new URL and a secret rotation, say) then both take effect, whatever their order."""

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
    """Read the record at `key`, compute its fields with `changed` from what was read, and
    write those that differ. The record as written; None when there is none."""
    for _ in range(_TRIES):
        read = r.hgetall(key)
        if not read:
            return None
        wanted = {str(field): str(value) for field, value in changed(read).items()}
        args = [
            part
            for field, value in wanted.items()
            if read.get(field) != value
            for part in (field, read.get(field, ""), value)
        ]
        if not args:
            return read
        outcome = scripts.run(r, "record_change", [key], args)
        if outcome == _CHANGED:
            return {**read, **wanted}
        if outcome == _GONE:
            return None
    raise Conflict("the record kept being changed by other requests meanwhile: try again")
