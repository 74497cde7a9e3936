"""Pydantic validation whose faults become `ValidationFailed` naming the faulty path."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from broker.core.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[int | str, ...]) -> str:
    """`("states", 2, "next")` -> `states[2].next`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part[:1].isupper() or "[" in part or "-" in part:
            continue  # the name of a union member, not a field
        else:
            out += f".{part}" if out else part
    return out


def first_fault(exc: ValidationError, prefix: str = "") -> ValidationFailed:
    first = exc.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    path = field_path(tuple(first["loc"]))
    if prefix:
        path = f"{prefix}.{path}" if path else prefix
    return ValidationFailed(message, field=path or None)


def parse(model: type[M], data: Any, *, prefix: str = "") -> M:
    """Validate `data` against `model`; the first fault raises a ValidationFailed."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise first_fault(exc, prefix) from exc
