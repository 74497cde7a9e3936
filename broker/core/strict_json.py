"""JSON from outside, read strictly: what `json.loads` lets through that is not JSON, or that
the rest of the system could not carry, is refused as it is read.

- Bytes must be UTF-8 (RFC 8259 §8.1; a leading byte-order mark is passed over). `json.loads`
  would also take UTF-16 and UTF-32. Bytes that are not UTF-8 inside a string make text that
  is not valid Unicode (below), named by its path; elsewhere, a document that is not JSON.
- `NaN`, `Infinity` and numbers too large for a float (`1e999`) are refused: they would come
  out again as `Infinity`, which is not JSON, in a delivery's body or an API answer.
- An integer of more digits than Python converts (`sys.get_int_max_str_digits()`, 4300 by
  default) is refused, in words for whoever reads them (NUMBER_TOO_LARGE).
- At most MAX_DEPTH arrays and objects inside one another: deeper, the recursive code that
  reads documents (templates, renderers) would run out of stack.
- Every string, key or value, must be valid Unicode: a lone surrogate (`"\\udc00"`) cannot
  be written as UTF-8, to Redis or to anyone.
- Asked for (`unique_keys`), an object may not hold a key twice: `json.loads` keeps the
  last, so what its author wrote first is lost without a word. Bot definitions and the
  management API's bodies are read so; inbound messages are not (the check costs the
  parser its fast path).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from broker.core.defaults import JSON_MAX_DEPTH

MAX_DEPTH = JSON_MAX_DEPTH

#: Why a number is refused that has more digits than Python converts to text or from it.
NUMBER_TOO_LARGE = "a number is too large"

#: Text that is not valid Unicode: a surrogate on its own cannot be encoded as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")


class TooDeep(ValueError):
    """Arrays and objects nested more than MAX_DEPTH deep."""


class InvalidText(ValueError):
    """A string that is not valid Unicode; `field` is its path in the document."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class DuplicateKey(ValueError):
    """An object that holds a key twice; `field` is the key's path in the document."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: is given twice")
        self.field = field


def loads(raw: str | bytes, *, unique_keys: bool = False) -> Any:
    """The document `raw` holds. ValueError when it is not JSON (json.JSONDecodeError for
    its syntax, plain ValueError for a number out of range or a constant such as NaN),
    TooDeep, InvalidText, or (with `unique_keys`) DuplicateKey."""
    # Each byte that is not UTF-8 becomes a lone surrogate, which `check` finds.
    text = (
        raw.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
        if isinstance(raw, bytes)
        else raw
    )
    twice: dict[int, str] = {}
    try:
        document = json.loads(
            text,
            parse_constant=_constant,
            parse_float=_finite,
            object_pairs_hook=_noting_twice(twice) if unique_keys else None,
        )
    except RecursionError:
        raise TooDeep(f"nested more than {MAX_DEPTH} deep") from None
    except ValueError as exc:
        if is_number_too_large(exc):
            raise ValueError(NUMBER_TOO_LARGE) from exc
        raise
    check(document, twice)
    return document


def is_number_too_large(exc: ValueError) -> bool:
    """Whether `exc` is Python's refusal to convert an integer of too many digits to text or
    from it (its words name `sys.set_int_max_str_digits()`, nothing for a user)."""
    return type(exc) is ValueError and "integer string conversion" in str(exc)


def check(document: Any, twice: Mapping[int, str] | None = None) -> None:
    """TooDeep or InvalidText for a document that has either; DuplicateKey for an object of it
    that `twice` names (by its id, with a key it was given twice)."""
    stack: list[tuple[str, Any, int]] = [("", document, 0)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise InvalidText("the text is not valid Unicode", field=path or "body")
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= MAX_DEPTH:
            raise TooDeep(f"nested more than {MAX_DEPTH} deep")
        if isinstance(value, list):
            stack += [(f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value)]
            continue
        if twice and id(value) in twice:
            key = twice[id(value)]
            raise DuplicateKey(_SURROGATE.sub("\ufffd", f"{path}.{key}" if path else key))
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _SURROGATE.search(key):  # YAML keys may be numbers
                raise InvalidText(
                    "a key is not valid Unicode", field=_SURROGATE.sub("\ufffd", inner)
                )
            stack.append((inner, item, depth + 1))


def _noting_twice(twice: dict[int, str]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """An `object_pairs_hook` that notes in `twice` each object given a key twice."""

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        made = dict(pairs)
        repeated = first_twice(key for key, _ in pairs)
        if repeated is not None:
            twice[id(made)] = repeated
        return made

    return build


def first_twice(keys: Iterable[Any]) -> str | None:
    """The first of `keys` given a second time, as text; None when none is."""
    seen: set[Any] = set()
    for key in keys:
        if key in seen:
            return str(key)
        seen.add(key)
    return None


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value
