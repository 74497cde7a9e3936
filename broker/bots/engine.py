"""The dialogue engine: one user message in, the bot's answers out. Pure: no I/O."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from broker.bots.payloads import decode_payload
from broker.bots.rendering import render_message, render_value

#: A definition that loops through `next` states longer than this is stopped.
MAX_HOPS = 25


@dataclass
class Memory:
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
    def from_json(cls, text: str | None) -> Memory:
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
    memory: Memory
    outputs: list[Output] = field(default_factory=list)


def absorb(memory: Memory, message: dict[str, Any]) -> Memory:
    """The conversation after what a message tells without a dialogue step: its `sessionData`
    and the user's names. Also what a paused bot keeps of the messages it does not answer."""
    variables = dict(memory.variables)
    variables.update(message.get("sessionData") or {})
    user = message.get("user") or {}
    for name in ("firstName", "lastName", "preferredLanguage"):
        if user.get(name):
            variables[f"user.{name}"] = user[name]
    return Memory(memory.state, variables, memory.awaiting)


class Engine:
    """Runs one bot definition (already validated)."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.definition = definition
        self.states: dict[str, dict[str, Any]] = {s["id"]: s for s in definition.get("states", [])}

    def step(self, memory: Memory, message: dict[str, Any], *, can_offload: bool) -> Turn:
        turn = Turn(absorb(memory, message))
        target = self._target(turn.memory, message)
        if target is not None:
            self._enter(turn, target, can_offload=can_offload)
        return turn

    def offload_failed(self, memory: Memory) -> Turn:
        """The offload of an earlier turn was refused or could not be delivered."""
        turn = Turn(Memory(memory.state, dict(memory.variables), memory.awaiting))
        failed = self.definition.get("offloadFailedState")
        if failed:
            self._enter(turn, failed, can_offload=False)
        return turn

    def go_to(self, memory: Memory, state_id: str, *, can_offload: bool) -> Turn:
        turn = Turn(Memory(memory.state, dict(memory.variables), None))
        self._enter(turn, state_id, can_offload=can_offload)
        return turn

    def _target(self, memory: Memory, message: dict[str, Any]) -> str | None:
        """The state a user message leads to, with what it tells stored in the variables."""
        kind = message["kind"]
        if kind == "intro":
            memory.awaiting = None
            return str(self.definition["startState"])
        if kind == "postback":
            pressed = self._pressed(memory, message)
            if pressed is not None:
                memory.awaiting = None
                return pressed
        text = _text_of(message, memory.variables)
        memory.variables["lastMessage"] = text
        if memory.awaiting:
            awaiting, memory.awaiting = memory.awaiting, None
            memory.variables[awaiting["variable"]] = text
            return awaiting["next"]
        return self._routed(memory.state, text)

    def _pressed(self, memory: Memory, message: dict[str, Any]) -> str | None:
        """Where a button press leads: its `nextDialogstateId`, or our payload's target.
        A payload that is not ours is read as text (None)."""
        for item in message.get("sessionDataToSet") or []:
            memory.variables[item["key"]] = item.get("value")
        if message.get("nextDialogstateId"):
            return str(message["nextDialogstateId"])
        decoded = decode_payload(message.get("payload") or "")
        if decoded is None:
            return None
        goto, params = decoded
        for param in params:
            memory.variables[str(param["key"])] = param.get("value")
        return goto

    def _routed(self, state_id: str | None, text: str) -> str | None:
        """The first route of the current state, then of the bot, that the text matches; else
        the fallback state."""
        current = self.states.get(state_id or "", {})
        for route in [*current.get("routes", []), *self.definition.get("routes", [])]:
            if _matches(route, text):
                return str(route["next"])
        fallback = self.definition.get("fallbackState")
        return str(fallback) if fallback else None

    def _enter(self, turn: Turn, state_id: str, *, can_offload: bool) -> None:
        """Enter a state and follow where it leads (at most MAX_HOPS states)."""
        next_id: str | None = state_id
        for _ in range(MAX_HOPS):
            state = self.states.get(next_id or "")
            if state is None:
                return
            turn.memory.state = next_id
            after = self._act(turn, state, can_offload=can_offload)
            if after is _After.STOP:
                return
            next_id = after if isinstance(after, str) else self._speak(turn, state)

    def _act(self, turn: Turn, state: dict[str, Any], *, can_offload: bool) -> _After | str:
        """Run a state's actions. An offload ends the turn when it can be sent, and leads to
        the "offloading failed" state (its id is returned) when it cannot."""
        variables = turn.memory.variables
        for action in state.get("actions", []):
            kind = action["type"]
            if kind == "setVariable":
                variables[action["key"]] = render_value(action.get("value"), variables)
            elif kind == "event":
                body = {"type": "event", "name": action["name"], "data": action.get("data", {})}
                turn.outputs.append(Output("message", body))
            elif kind == "offload":
                if can_offload:
                    turn.outputs.append(Output("offload", {"payload": action.get("payload", {})}))
                    return _After.STOP
                failed = self.definition.get("offloadFailedState")
                return str(failed) if failed else _After.STOP
        return _After.SPEAK

    def _speak(self, turn: Turn, state: dict[str, Any]) -> str | None:
        """Send a state's messages; then wait for input (None) or go on to `next`."""
        for message in state.get("messages", []):
            turn.outputs.append(Output("message", render_message(message, turn.memory.variables)))
        if "input" in state:
            turn.memory.awaiting = {
                "variable": state["input"]["variable"],
                "next": state["input"]["next"],
            }
            return None
        following = state.get("next")
        return str(following) if following else None


class _After(enum.Enum):
    """What follows a state's actions."""

    SPEAK = "speak"  # its messages
    STOP = "stop"  # nothing: the turn ends here


def _text_of(message: dict[str, Any], variables: dict[str, Any]) -> str:
    """What a message says, as text for routes and input; a location is also stored."""
    if message["kind"] == "postback":
        return str(message.get("payload") or message.get("title") or "")
    if message["kind"] == "location":
        coordinates = message["coordinates"]
        variables["location.lat"] = coordinates["lat"]
        variables["location.long"] = coordinates["long"]
        return f"{coordinates['lat']},{coordinates['long']}"
    return str(message.get("text", ""))


def _matches(route: dict[str, Any], text: str) -> bool:
    wanted = str(route["match"]).casefold()
    said = text.strip().casefold()
    return said == wanted if route.get("exact") else wanted in said
