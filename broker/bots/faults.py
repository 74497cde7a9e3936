"""What is wrong with a bot definition: every fault, each with the path where it is."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from broker.core.errors import ValidationFailed

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")

#: Pydantic's words for a fault, where ours say more.
_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a field here",
}


@dataclass(frozen=True)
class Fault:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def view(self) -> dict[str, str]:
        return {"field": self.path, "message": self.message}


class DefinitionInvalid(ValidationFailed):
    """A definition with faults: `field` and `message` tell the first, `faults` all of them."""

    def __init__(self, faults: Sequence[Fault]) -> None:
        first = faults[0]
        more = f" (and {len(faults) - 1} more faults)" if len(faults) > 1 else ""
        super().__init__(first.message + more, field=first.path or None)
        self.faults = list(faults)


def join(path: str, key: str | int) -> str:
    """`states` + `order` -> `states.order`; `states` + 2 -> `states[2]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _PLAIN_KEY.match(key):
        return f"{path}[{key!r}]"
    return f"{path}.{key}" if path else key


def of_pydantic(exc: ValidationError, data: Any, prefix: str) -> list[Fault]:
    """Every fault pydantic found, each at its path in `data` (the names of union members in
    pydantic's locations are left out: they are not in the data)."""
    faults: list[Fault] = []
    for error in exc.errors():
        message = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
        missing = error["type"] == "missing"
        faults.append(Fault(_path(error["loc"], data, prefix, missing=missing), message))
    return faults


def _path(loc: tuple[int | str, ...], data: Any, prefix: str, *, missing: bool) -> str:
    path = prefix
    value = data
    for index, part in enumerate(loc):
        if isinstance(value, list) and isinstance(part, int):
            path = join(path, part)
            value = value[part] if part < len(value) else None
        elif isinstance(value, dict) and isinstance(part, str) and part in value:
            path = join(path, part)
            value = value[part]
        elif missing and index == len(loc) - 1 and isinstance(part, str):
            path = join(path, part)
        # else: the name of a union member, or of a type pydantic tried
    return path
