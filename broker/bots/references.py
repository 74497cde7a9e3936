"""Reference checks of a definition: every state it names exists."""

from __future__ import annotations

from typing import Any

from broker.core.errors import ValidationFailed


def validate_references(definition: dict[str, Any]) -> None:
    """Every state a definition names must exist. Raises ValidationFailed naming the path."""
    states = definition.get("states", [])
    ids = [s.get("id") for s in states]
    seen: set[str] = set()
    for index, state_id in enumerate(ids):
        if state_id in seen:
            raise ValidationFailed(
                f"state id {state_id!r} is used twice", field=f"states[{index}].id"
            )
        seen.add(state_id)

    def need(target: Any, path: str) -> None:
        if target is not None and target not in seen:
            raise ValidationFailed(f"no state {target!r}", field=path)

    need(definition.get("startState"), "startState")
    need(definition.get("fallbackState"), "fallbackState")
    need(definition.get("offloadFailedState"), "offloadFailedState")
    for index, route in enumerate(definition.get("routes", [])):
        need(route.get("next"), f"routes[{index}].next")
    for index, state in enumerate(states):
        need(state.get("next"), f"states[{index}].next")
        if "input" in state:
            need(state["input"].get("next"), f"states[{index}].input.next")
        for r_index, route in enumerate(state.get("routes", [])):
            need(route.get("next"), f"states[{index}].routes[{r_index}].next")
        _check_gotos(state.get("messages", []), f"states[{index}].messages", need)


def _check_gotos(value: Any, path: str, need: Any) -> None:
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_gotos(item, f"{path}[{index}]", need)
    elif isinstance(value, dict):
        if "goto" in value:
            need(value["goto"], f"{path}.goto")
        for key, item in value.items():
            _check_gotos(item, f"{path}.{key}", need)
