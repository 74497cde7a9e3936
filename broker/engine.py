"""The dialogue engine: one user message in, the bot's answers out. Pure: no I/O.

A definition is a list of dialogue states. Entering a state runs its actions, sends
its messages and, where it names one, moves on to its `next` state. A user text is
matched against the current state's routes, then the bot's global routes; a state
with an `input` stores the text in a variable instead. Buttons name the state they
lead to (`goto`) and variables to set (`params`); on the wire that becomes an opaque
`payload` string, which comes back in a postback and is mapped to its target here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from broker.errors import ValidationFailed

#: A definition that loops through `next` states longer than this is stopped.
MAX_HOPS = 25
_PAYLOAD_PREFIX = "sb1."
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
#: Fields whose `{{variables}}` are filled in; a URL may start with one (see botmessages).
_RENDERED_FIELDS = ("text", "title", "subtitle", "url", "image_url", "item_url")


@dataclass
class SessionState:
    """What the bot remembers of one conversation."""

    state: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    #: The variable the next user text goes into, and the state that follows.
    awaiting: dict[str, str] | None = None

    def to_json(self) -> str:
        return json.dumps(
            {"state": self.state, "variables": self.variables, "awaiting": self.awaiting}
        )

    @classmethod
    def from_json(cls, text: str | None) -> SessionState:
        if not text:
            return cls()
        raw = json.loads(text)
        return cls(raw.get("state"), raw.get("variables") or {}, raw.get("awaiting"))


@dataclass(frozen=True)
class Output:
    """An effect of a turn: a BotMessage to send, or an offload to request."""

    kind: str  # "message" | "offload"
    body: dict[str, Any]


@dataclass
class Turn:
    state: SessionState
    outputs: list[Output] = field(default_factory=list)


def absorb(session: SessionState, message: dict[str, Any]) -> SessionState:
    """The session after what a message tells without a dialogue step: its `sessionData`
    and the user's names. Also what a paused bot keeps of the messages it does not answer."""
    variables = dict(session.variables)
    variables.update(message.get("sessionData") or {})
    user = message.get("user") or {}
    for name in ("firstName", "lastName", "preferredLanguage"):
        if user.get(name):
            variables[f"user.{name}"] = user[name]
    return SessionState(session.state, variables, session.awaiting)


def encode_payload(goto: str | None, params: list[dict[str, Any]] | None) -> str:
    raw = json.dumps({"g": goto, "p": params or []}, separators=(",", ":")).encode()
    return _PAYLOAD_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_payload(payload: str) -> tuple[str | None, list[dict[str, Any]]] | None:
    """The target state and variables of a button payload, or None if it is not ours."""
    if not payload.startswith(_PAYLOAD_PREFIX):
        return None
    data = payload[len(_PAYLOAD_PREFIX) :]
    try:
        raw = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    params = raw.get("p")
    if not isinstance(params, list):
        params = []
    goto = raw.get("g") if isinstance(raw.get("g"), str) else None
    return goto, [p for p in params if isinstance(p, dict) and "key" in p]


class Engine:
    """Runs one bot definition (already validated)."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.definition = definition
        self.states: dict[str, dict[str, Any]] = {s["id"]: s for s in definition.get("states", [])}

    def step(self, session: SessionState, message: dict[str, Any], *, can_offload: bool) -> Turn:
        turn = Turn(absorb(session, message))
        target = self._target(turn.state, message)
        if target is not None:
            self._enter(turn, target, can_offload=can_offload)
        return turn

    def offload_failed(self, session: SessionState) -> Turn:
        """The offload of an earlier turn was refused or could not be delivered."""
        turn = Turn(SessionState(session.state, dict(session.variables), session.awaiting))
        failed = self.definition.get("offloadFailedState")
        if failed:
            self._enter(turn, failed, can_offload=False)
        return turn

    def go_to(self, session: SessionState, state_id: str, *, can_offload: bool) -> Turn:
        turn = Turn(SessionState(session.state, dict(session.variables), None))
        self._enter(turn, state_id, can_offload=can_offload)
        return turn

    def _target(self, session: SessionState, message: dict[str, Any]) -> str | None:
        kind = message["kind"]
        variables = session.variables
        if kind == "intro":
            session.awaiting = None
            return str(self.definition["startState"])
        if kind == "postback":
            for item in message.get("sessionDataToSet") or []:
                variables[item["key"]] = item.get("value")
            if message.get("nextDialogstateId"):
                session.awaiting = None
                return str(message["nextDialogstateId"])
            decoded = decode_payload(message.get("payload") or "")
            if decoded is not None:
                goto, params = decoded
                for param in params:
                    variables[str(param["key"])] = param.get("value")
                session.awaiting = None
                return goto
            text = message.get("payload") or message.get("title") or ""
        elif kind == "location":
            variables["location.lat"] = message["coordinates"]["lat"]
            variables["location.long"] = message["coordinates"]["long"]
            text = f"{message['coordinates']['lat']},{message['coordinates']['long']}"
        else:
            text = message.get("text", "")
        variables["lastMessage"] = text
        if session.awaiting:
            awaiting, session.awaiting = session.awaiting, None
            variables[awaiting["variable"]] = text
            return awaiting["next"]
        current = self.states.get(session.state or "", {})
        for route in [*current.get("routes", []), *self.definition.get("routes", [])]:
            if _matches(route, text):
                return str(route["next"])
        fallback = self.definition.get("fallbackState")
        return str(fallback) if fallback else None

    def _enter(self, turn: Turn, state_id: str, *, can_offload: bool) -> None:
        for _ in range(MAX_HOPS):
            state = self.states.get(state_id)
            if state is None:
                return
            turn.state.state = state_id
            variables = turn.state.variables
            for action in state.get("actions", []):
                kind = action["type"]
                if kind == "setVariable":
                    variables[action["key"]] = _render(action.get("value"), variables)
                elif kind == "event":
                    body = {"type": "event", "name": action["name"], "data": action.get("data", {})}
                    turn.outputs.append(Output("message", body))
                elif kind == "offload":
                    if can_offload:
                        turn.outputs.append(
                            Output("offload", {"payload": action.get("payload", {})})
                        )
                        return
                    failed = self.definition.get("offloadFailedState")
                    if not failed:
                        return
                    state_id = failed
                    break
            else:
                for message in state.get("messages", []):
                    turn.outputs.append(Output("message", render_message(message, variables)))
                if "input" in state:
                    turn.state.awaiting = {
                        "variable": state["input"]["variable"],
                        "next": state["input"]["next"],
                    }
                    return
                if not state.get("next"):
                    return
                state_id = state["next"]


def _matches(route: dict[str, Any], text: str) -> bool:
    wanted = str(route["match"]).casefold()
    said = text.strip().casefold()
    return said == wanted if route.get("exact") else wanted in said


def _render(value: Any, variables: dict[str, Any]) -> Any:
    if not isinstance(value, str):
        return value
    return _PLACEHOLDER.sub(lambda m: _text(variables.get(m.group(1), "")), value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def render_message(message: Any, variables: dict[str, Any]) -> Any:
    """A BotMessage with variables filled in and button targets turned into payloads."""
    if isinstance(message, list):
        return [render_message(item, variables) for item in message]
    if not isinstance(message, dict):
        return message
    out: dict[str, Any] = {}
    for key, value in message.items():
        if key in ("goto", "params"):
            continue
        if key in _RENDERED_FIELDS:
            out[key] = _render(value, variables)
        else:
            out[key] = render_message(value, variables)
    if "goto" in message or "params" in message:
        out["payload"] = encode_payload(message.get("goto"), message.get("params"))
    return out


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
