"""Pydantic validation whose faults become `ValidationFailed` naming the faulty path."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, StrictStr, ValidationError

from broker.core.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)

#: Control characters (Unicode's Cc) and the line and paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """`text`, which must be one line (ValueError): listings show a record a line."""
    if CONTROL.search(text):
        raise ValueError("one line of text: no control characters or line breaks")
    return text


def a_name(name: str) -> str:
    """`name`, which must be one line and not blank (ValueError)."""
    if not name.strip():
        raise ValueError("a name is more than white space")
    return one_line(name)


def variable_key(key: str) -> str:
    """`key`, which must name a variable (ValueError): not blank, no control or invisible
    formatting characters (U+200B, U+202E, ...), and dots only between parts (`order.size`,
    not `.`, `a.` or `a..b`)."""
    if not key.strip():
        raise ValueError("a variable's name is more than white space")
    if CONTROL.search(key) or any(unicodedata.category(c) == "Cf" for c in key):
        raise ValueError(
            f"a variable's name holds no control or formatting characters: {key!r} does"
        )
    if "" in key.split("."):
        raise ValueError(f"a variable's name has dots only between its parts: {key!r} has not")
    return key


#: A name (a bot's, a definition's): one line, not blank.
OneLineName = Annotated[StrictStr, AfterValidator(a_name)]
#: The name of a variable a message or an agent sets (`variable_key`).
VariableKey = Annotated[StrictStr, AfterValidator(variable_key)]
#: A description: one line.
OneLine = Annotated[StrictStr, AfterValidator(one_line)]


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
