"""Checks of a definition across its parts: every state, intent and entity it names exists, its
regexes compile, its `{{placeholders}}` are well formed, its API URLs are allowed. They read
the raw document, so that they find their faults even where its shape has others."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from broker.bots import patterns
from broker.bots.entities import BUILT_IN
from broker.bots.faults import Fault, join
from broker.bots.rendering import PLACEHOLDER, placeholders, render_value
from broker.bots.variables import lookup

#: Checks an API URL where the definition is saved; returns why it is refused, or None.
UrlCheck = Callable[[str], str | None]

_SCHEMES = ("http://", "https://")
#: The keys of a state, or of a version 1 state, whose strings are filled in.
_FILLED_IN = ("say", "retry", "set", "request", "data", "payload", "branches")
_V1_FILLED_IN = ("messages", "actions")
#: Regexes, which a `{{` may belong to, are no templates.
_NOT_FILLED_IN = ("matches", "pattern")
#: What stands for a variable the conversation fills in, when an API URL is checked.
_FROM_CONVERSATION = "conversationvariable"


def v1_faults(definition: dict[str, Any], prefix: str) -> list[Fault]:
    faults: list[Fault] = []
    states = _items(definition.get("states"))
    seen: set[str] = set()
    for index, state in states:
        state_id = state.get("id")
        if isinstance(state_id, str):
            if state_id in seen:
                faults.append(
                    Fault(join(join(join(prefix, "states"), index), "id"), "is used twice")
                )
            seen.add(state_id)
    names = _Names(seen, faults)
    for key in ("startState", "fallbackState", "offloadFailedState"):
        names.state(definition.get(key), join(prefix, key))
    for index, route in _items(definition.get("routes")):
        names.state(route.get("next"), join(join(join(prefix, "routes"), index), "next"))
    for index, state in states:
        at = join(join(prefix, "states"), index)
        names.state(state.get("next"), join(at, "next"))
        if isinstance(state.get("input"), dict):
            names.state(state["input"].get("next"), join(join(at, "input"), "next"))
        for r_index, route in _items(state.get("routes")):
            names.state(route.get("next"), join(join(join(at, "routes"), r_index), "next"))
        for target, path in _gotos(state.get("messages"), join(at, "messages")):
            names.state(target, path)
        for key in _V1_FILLED_IN:
            _template_faults(state.get(key), join(at, key), faults)
    return faults


def v2_faults(definition: dict[str, Any], prefix: str, check_url: UrlCheck | None) -> list[Fault]:
    faults: list[Fault] = []
    states = _objects(definition.get("states"))
    intents = _objects(definition.get("intents"))
    entities = _mapping(definition.get("entities"))
    names = _Names(set(_mapping(definition.get("states"))), faults)
    for key in ("startState", "fallbackState", "offloadFailedState"):
        names.state(definition.get(key), join(prefix, key))
    for index, route in _items(definition.get("routes")):
        names.state(route.get("next"), join(join(join(prefix, "routes"), index), "next"))
    for name in entities:
        if name in BUILT_IN:
            faults.append(
                Fault(join(join(prefix, "entities"), name), "is the name of a built-in entity")
            )
    used_here = {intent for state in states.values() for intent in _mapping(state.get("intents"))}
    for name, intent in intents.items():
        at = join(join(prefix, "intents"), name)
        names.state(intent.get("next"), join(at, "next"))
        for index, state_id in enumerate(_list(intent.get("states"))):
            names.state(state_id, join(join(at, "states"), index))
        for variable, entity in _mapping(intent.get("entities")).items():
            if isinstance(entity, str) and entity not in entities and entity not in BUILT_IN:
                where = join(join(at, "entities"), variable)
                faults.append(Fault(where, _unknown("entity", entity)))
        if intent.get("next") is None and name not in used_here:
            faults.append(Fault(join(at, "next"), "is required for an intent that no state names"))
    variables = _mapping(definition.get("variables"))
    for state_id, state in states.items():
        at = join(join(prefix, "states"), state_id)
        _state_faults(state, at, names, intents, entities, variables, check_url)
    return faults


def _state_faults(
    state: dict[str, Any],
    at: str,
    names: _Names,
    intents: dict[str, Any],
    entities: dict[str, Any],
    variables: dict[str, Any],
    check_url: UrlCheck | None,
) -> None:
    for key in ("next", "onFail", "onError", "else"):
        names.state(state.get(key), join(at, key))
    for index, branch in _items(state.get("branches")):
        names.state(branch.get("next"), join(join(join(at, "branches"), index), "next"))
        _regex_faults(branch.get("if"), join(join(join(at, "branches"), index), "if"), names)
    for status, target in _mapping(state.get("on")).items():
        names.state(target, join(join(at, "on"), status))
    for index, route in _items(state.get("routes")):
        names.state(route.get("next"), join(join(join(at, "routes"), index), "next"))
    for intent, target in _mapping(state.get("intents")).items():
        if intent not in intents:
            where = join(join(at, "intents"), intent)
            names.faults.append(Fault(where, _unknown("intent", intent)))
        names.state(target, join(join(at, "intents"), intent))
    entity = state.get("entity")
    if isinstance(entity, str) and entity not in entities:
        names.faults.append(Fault(join(at, "entity"), _unknown("entity", entity)))
    if isinstance(state.get("pattern"), str):
        _regex(state["pattern"], join(at, "pattern"), names)
    for key in ("say", "retry"):
        for target, path in _gotos(state.get(key), join(at, key)):
            names.state(target, path)
    for key in _FILLED_IN:
        _template_faults(state.get(key), join(at, key), names.faults)
    request = state.get("request")
    if isinstance(request, dict) and isinstance(request.get("url"), str):
        refusal = _url_refusal(request["url"], variables, check_url)
        if refusal:
            names.faults.append(Fault(join(join(at, "request"), "url"), refusal))


def _url_refusal(url: str, variables: dict[str, Any], check_url: UrlCheck | None) -> str | None:
    """Why an API URL is refused: its scheme, or outbound safety where the URL is known
    (written out, or filled in by the definition's own variables), or at least its scheme
    and host are. A URL that takes its host from the conversation is checked at call time
    only."""
    unknown = {name for name in placeholders(url) if lookup(variables, name) is None}
    # What the conversation fills in stands as a word that no host is made of.
    marked = PLACEHOLDER.sub(
        lambda m: _FROM_CONVERSATION if m.group(1) in unknown else m.group(0), url
    )
    filled = render_value(marked, variables)
    if filled.startswith(_FROM_CONVERSATION):
        return None  # the whole URL comes from the conversation
    if not filled.startswith(_SCHEMES):
        return "an API URL is http:// or https://"
    if check_url is None:
        return None
    if not unknown:
        return check_url(filled)
    try:
        parts = urlsplit(filled)
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    if _FROM_CONVERSATION in parts.netloc:
        return None
    return check_url(f"{parts.scheme}://{parts.netloc}/")


def _template_faults(value: Any, at: str, faults: list[Fault]) -> None:
    """A fault for each string with a `{{` that starts no placeholder (`{{name`,
    `{{ name | upper }}`, `{{a b}}`): it would go out as written."""
    if isinstance(value, str):
        if "{{" in PLACEHOLDER.sub("", value):
            faults.append(
                Fault(
                    at,
                    "holds a `{{` that is no placeholder: a placeholder is `{{name}}`, the "
                    "name of letters, digits, `_`, `.` and `-`",
                )
            )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _template_faults(item, join(at, index), faults)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key not in _NOT_FILLED_IN:
                _template_faults(item, join(at, key), faults)


def _regex_faults(condition: Any, at: str, names: _Names) -> None:
    if not isinstance(condition, dict):
        return
    if isinstance(condition.get("matches"), str):
        _regex(condition["matches"], join(at, "matches"), names)
    for key in ("all", "any"):
        for index, inner in _items(condition.get(key)):
            _regex_faults(inner, join(join(at, key), index), names)
    _regex_faults(condition.get("not"), join(at, "not"), names)


def _regex(pattern: str, at: str, names: _Names) -> None:
    try:
        patterns.check(pattern)
    except patterns.error as exc:
        names.faults.append(Fault(at, f"is not a valid regex: {exc}"))


class _Names:
    def __init__(self, states: set[str], faults: list[Fault]) -> None:
        self.states = states
        self.faults = faults

    def state(self, target: Any, path: str) -> None:
        if isinstance(target, str) and target not in self.states:
            self.faults.append(Fault(path, _unknown("state", target)))


def _unknown(kind: str, name: str) -> str:
    return f'unknown {kind} "{name}"'


def _gotos(value: Any, path: str) -> Iterator[tuple[Any, str]]:
    """Every button's or quick reply's `goto` in messages, with its path."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _gotos(item, join(path, index))
    elif isinstance(value, dict):
        if "goto" in value:
            yield value["goto"], join(path, "goto")
        for key, item in value.items():
            if isinstance(key, str):
                yield from _gotos(item, join(path, key))


def _items(value: Any) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, dict)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _objects(value: Any) -> dict[str, dict[str, Any]]:
    """The entries of a mapping whose values are objects."""
    return {key: item for key, item in _mapping(value).items() if isinstance(item, dict)}
