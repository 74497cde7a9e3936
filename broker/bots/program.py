"""A validated definition, of either version, compiled into what the engine runs: each state
becomes the steps it takes on entry and what follows them."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from broker.bots.entities import options_of
from broker.bots.matcher import Matcher


@dataclass(frozen=True)
class Say:
    """Messages, by language ("" when a state gives one set for all)."""

    variants: dict[str, list[Any]]

    def pick(self, locale: str | None, default: str | None) -> list[Any]:
        if "" in self.variants:
            return self.variants[""]
        wanted = [w for w in (locale, default) if w]
        keys = {key.lower().replace("_", "-"): key for key in self.variants}
        for want in wanted:
            want = want.lower().replace("_", "-")
            for candidate in (want, want.split("-")[0]):
                if candidate in keys:
                    return self.variants[keys[candidate]]
            for key, original in keys.items():
                if key.split("-")[0] == want.split("-")[0]:
                    return self.variants[original]
        return next(iter(self.variants.values()), [])


@dataclass(frozen=True)
class SetVariables:
    values: dict[str, Any]


@dataclass(frozen=True)
class UnsetVariables:
    names: tuple[str, ...]


@dataclass(frozen=True)
class Emit:
    name: str
    data: Any


@dataclass(frozen=True)
class Offload:
    payload: dict[str, Any]
    on_fail: str | None


Step = Say | SetVariables | UnsetVariables | Emit | Offload


@dataclass(frozen=True)
class Listen:
    """Wait for the user; these keywords and intents come before the bot's."""

    routes: tuple[dict[str, Any], ...] = ()
    intents: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Next:
    target: str


@dataclass(frozen=True)
class Ask:
    variable: str
    next: str
    listen: Listen = field(default_factory=Listen)
    #: Version 1's input: the text as it is, whatever it says.
    raw: bool = False
    expect: str = "text"
    options: dict[str, list[str]] = field(default_factory=dict)
    pattern: str | None = None
    least: float | None = None
    most: float | None = None
    retry: Say | None = None
    tries: int = 3
    on_fail: str | None = None


@dataclass(frozen=True)
class Branch:
    rules: tuple[tuple[dict[str, Any], str], ...]
    otherwise: str | None


@dataclass(frozen=True)
class Call:
    request: dict[str, Any]
    save: dict[str, str]
    next: str
    on: dict[str, str]
    on_error: str | None


@dataclass(frozen=True)
class Run:
    action: str
    timeout: float
    next: str | None
    on_error: str | None


@dataclass(frozen=True)
class End:
    pass


Then = Listen | Next | Ask | Branch | Call | Run | End


@dataclass(frozen=True)
class Node:
    id: str
    steps: tuple[Step, ...]
    then: Then


@dataclass(frozen=True)
class Intent:
    next: str | None
    states: frozenset[str] | None
    entities: dict[str, str]


@dataclass(frozen=True)
class Program:
    start: str
    fallback: str | None
    offload_failed: str | None
    states: dict[str, Node]
    routes: tuple[dict[str, Any], ...] = ()
    intents: dict[str, Intent] = field(default_factory=dict)
    entities: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    matcher: Matcher | None = None
    threshold: float = 0.5
    language: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)


def compile_definition(definition: dict[str, Any]) -> Program:
    """The program of a validated definition."""
    if definition.get("version") == 2:
        return _compile_v2(definition)
    return _compile_v1(definition)


@functools.lru_cache(maxsize=256)
def compile_text(text: str) -> Program:
    """The program of a stored definition's JSON text, compiled once per process."""
    return compile_definition(json.loads(text))


def _compile_v1(definition: dict[str, Any]) -> Program:
    states: dict[str, Node] = {}
    for state in definition["states"]:
        steps: list[Step] = []
        for action in state.get("actions", []):
            if action["type"] == "setVariable":
                steps.append(SetVariables({action["key"]: action.get("value")}))
            elif action["type"] == "event":
                steps.append(Emit(action["name"], action.get("data", {})))
            else:
                steps.append(Offload(action.get("payload", {}), None))
        if state.get("messages"):
            steps.append(Say({"": list(state["messages"])}))
        listen = Listen(tuple(state.get("routes", [])))
        then: Then
        if state.get("input"):
            then = Ask(state["input"]["variable"], state["input"]["next"], listen, raw=True)
        elif state.get("next"):
            then = Next(state["next"])
        else:
            then = listen
        states[state["id"]] = Node(state["id"], tuple(steps), then)
    return Program(
        start=definition["startState"],
        fallback=definition.get("fallbackState"),
        offload_failed=definition.get("offloadFailedState"),
        states=states,
        routes=tuple(definition.get("routes", [])),
    )


def _compile_v2(definition: dict[str, Any]) -> Program:
    given = definition.get("entities", {})
    entities = {name: options_of(entity["values"]) for name, entity in given.items()}
    intents = definition.get("intents", {})
    classes = {
        name: [phrase for value, synonyms in options.items() for phrase in (value, *synonyms)]
        for name, options in entities.items()
    }
    return Program(
        start=definition["startState"],
        fallback=definition.get("fallbackState"),
        offload_failed=definition.get("offloadFailedState"),
        states={sid: _node(sid, state, entities) for sid, state in definition["states"].items()},
        routes=tuple(definition.get("routes", [])),
        intents={
            name: Intent(
                intent.get("next"),
                frozenset(intent["states"]) if intent.get("states") is not None else None,
                dict(intent.get("entities", {})),
            )
            for name, intent in intents.items()
        },
        entities=entities,
        matcher=Matcher({n: i["examples"] for n, i in intents.items()}, classes)
        if intents
        else None,
        threshold=float(definition.get("threshold", 0.5)),
        language=definition.get("language"),
        variables=dict(definition.get("variables", {})),
    )


def _say(value: Any) -> Say | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return Say({locale: _messages(items) for locale, items in value.items()})
    return Say({"": _messages(value)})


def _messages(value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    return [{"text": item} if isinstance(item, str) else item for item in items]


def _node(state_id: str, state: dict[str, Any], entities: dict[str, dict[str, list[str]]]) -> Node:
    kind = state.get("type", "message")
    say = _say(state.get("say"))
    steps: list[Step] = []
    if kind == "set":
        steps.append(SetVariables(dict(state.get("set", {}))))
        steps.append(UnsetVariables(tuple(state.get("unset", []))))
    elif kind == "event":
        steps.append(Emit(state["name"], state.get("data")))
    if say is not None:
        steps.append(say)
    if kind == "offload":
        steps.append(Offload(state.get("payload", {}), state.get("onFail")))
    listen = Listen(tuple(state.get("routes", [])), dict(state.get("intents", {})))
    then: Then = listen
    if kind == "input":
        options = entities.get(state.get("entity") or "", {})
        if state.get("choices") is not None:
            options = options_of(state["choices"])
        then = Ask(
            state["variable"],
            state["next"],
            listen,
            expect=state.get("expect", "text"),
            options=options,
            pattern=state.get("pattern"),
            least=state.get("min"),
            most=state.get("max"),
            retry=_say(state.get("retry")),
            tries=state.get("tries", 3),
            on_fail=state.get("onFail"),
        )
    elif kind == "condition":
        rules = tuple((branch["if"], branch["next"]) for branch in state["branches"])
        then = Branch(rules, state.get("else"))
    elif kind == "api":
        then = Call(
            state["request"],
            dict(state.get("save", {})),
            state["next"],
            dict(state.get("on", {})),
            state.get("onError"),
        )
    elif kind == "action":
        timeout = state.get("timeout", 2.0)
        then = Run(state["action"], timeout, state.get("next"), state.get("onError"))
    elif kind == "end":
        then = End()
    elif kind != "offload" and state.get("next"):
        then = Next(state["next"])
    return Node(state_id, tuple(steps), then)
