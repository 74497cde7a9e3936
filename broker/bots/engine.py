"""The dialogue engine: one user message in, the bot's answers out. Pure: no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from broker.bots.payloads import decode_payload
from broker.bots.rendering import _render, render_message

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
        kind = message["kind"]
        variables = memory.variables
        if kind == "intro":
            memory.awaiting = None
            return str(self.definition["startState"])
        if kind == "postback":
            for item in message.get("sessionDataToSet") or []:
                variables[item["key"]] = item.get("value")
            if message.get("nextDialogstateId"):
                memory.awaiting = None
                return str(message["nextDialogstateId"])
            decoded = decode_payload(message.get("payload") or "")
            if decoded is not None:
                goto, params = decoded
                for param in params:
                    variables[str(param["key"])] = param.get("value")
                memory.awaiting = None
                return goto
            text = message.get("payload") or message.get("title") or ""
        elif kind == "location":
            variables["location.lat"] = message["coordinates"]["lat"]
            variables["location.long"] = message["coordinates"]["long"]
            text = f"{message['coordinates']['lat']},{message['coordinates']['long']}"
        else:
            text = message.get("text", "")
        variables["lastMessage"] = text
        if memory.awaiting:
            awaiting, memory.awaiting = memory.awaiting, None
            variables[awaiting["variable"]] = text
            return awaiting["next"]
        current = self.states.get(memory.state or "", {})
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
            turn.memory.state = state_id
            variables = turn.memory.variables
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
                    turn.memory.awaiting = {
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
