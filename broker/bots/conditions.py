"""The condition router's tests of variables: equals, in, greater, less, exists, matches;
combined with all, any and not."""

from __future__ import annotations

from typing import Any

from broker.bots import patterns
from broker.bots.rendering import render_json
from broker.bots.variables import has, lookup


def holds(condition: dict[str, Any], variables: dict[str, Any]) -> bool:
    if "all" in condition:
        return all(holds(inner, variables) for inner in condition["all"])
    if "any" in condition:
        return any(holds(inner, variables) for inner in condition["any"])
    if "not" in condition:
        return not holds(condition["not"], variables)
    name = condition["var"]
    value = lookup(variables, name)
    if "exists" in condition:
        return has(variables, name) is bool(condition["exists"])
    if "equals" in condition:
        return _same(value, render_json(condition["equals"], variables))
    if "in" in condition:
        return any(_same(value, render_json(item, variables)) for item in condition["in"])
    if "greater" in condition:
        number = _number(value)
        return number is not None and number > condition["greater"]
    if "less" in condition:
        number = _number(value)
        return number is not None and number < condition["less"]
    if value is None:
        return False
    return patterns.search(condition["matches"], str(value), where=f"a condition on {name!r}")


def _same(value: Any, expected: Any) -> bool:
    """Equal, or the same when read as numbers, or as text regardless of case."""
    if value == expected:
        return True
    left, right = _number(value), _number(expected)
    if left is not None and right is not None:
        return left == right
    if isinstance(value, str) and isinstance(expected, str):
        return value.casefold() == expected.casefold()
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
