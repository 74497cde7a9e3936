"""A conversation's variables: names with namespaces (`order.size`), read, set and unset.

Variables are kept flat, under their dotted names. Values that came in as objects (an
inbound `sessionData` of `{"order": {"size": "L"}}`) stay as they came, and `order.size`
reads into them too.
"""

from __future__ import annotations

import json
from typing import Any

_MISSING = object()


def text_size(text: str) -> int:
    """Its bytes as UTF-8, as the limits on variables count them."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def compact_json(value: Any) -> str:
    """A value as compact JSON (UTF-8, no spaces), as the limits on variables count it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def total_size(variables: dict[str, Any]) -> int:
    """The bytes of all the variables together, as one compact JSON object, names included."""
    return text_size(compact_json(variables))


def lookup(variables: dict[str, Any], name: str, default: Any = None) -> Any:
    """The value of `name`: its own entry, else the path into an object an outer name holds."""
    if name in variables:
        return variables[name]
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        outer = ".".join(parts[:cut])
        if outer in variables:
            value = _walk(variables[outer], parts[cut:])
            return default if value is _MISSING else value
    return default


def has(variables: dict[str, Any], name: str) -> bool:
    """Whether `name` holds a value other than null, or a name in its namespace does."""
    if lookup(variables, name) is not None:
        return True
    prefix = name + "."
    return any(key.startswith(prefix) and value is not None for key, value in variables.items())


def unset(variables: dict[str, Any], name: str) -> None:
    """Forget `name` and every name in its namespace (`order` takes `order.size` with it)."""
    prefix = name + "."
    for key in [k for k in variables if k == name or k.startswith(prefix)]:
        del variables[key]


def assign(variables: dict[str, Any], name: str, value: Any) -> None:
    """Set `name` to `value` in place of everything in its namespace: `order` given as an
    object replaces the `order.size` an earlier message or input set."""
    unset(variables, name)
    variables[name] = value


def path(value: Any, dotted: str) -> Any:
    """`items.0.name` inside a JSON value, or None where it leads nowhere."""
    found = _walk(value, dotted.split(".")) if dotted else value
    return None if found is _MISSING else found


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value
