"""Conversation tests: scripted conversations run against a definition, offline.

No Redis and no network: API calls are answered from the test file, custom actions run in
this process. A file holds `conversations`, each with a `name` and `steps`; see
docs/bot-definitions.md ("Testing a bot offline") for the steps. A mismatch is told as a
diff of what the bot had to say against what it said.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from broker.bots import custom_actions
from broker.bots.actions import ActionOutcome, ApiAnswer, ApiRequest
from broker.bots.custom_actions import ActionContext
from broker.bots.engine import Engine, Memory, Output, TooManyHops, Turn, check_variables
from broker.bots.patterns import PatternTooSlow
from broker.bots.program import Program
from broker.bots.rendering import TooLarge, Unsendable
from broker.bots.variables import lookup

#: The time a test says the messages come at (2026-11-21, noon UTC), for relative dates.
DEFAULT_TIME = 1795262400.0
_USER_STEPS = ("intro", "say", "press", "postback", "location")


@dataclass
class Outcome:
    """One conversation's result: no failures means it passed."""

    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


class _FileActions:
    """API calls answered from the conversation's `apis`; custom actions run here."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = answers
        self.unanswered: list[str] = []

    def call_api(self, request: ApiRequest) -> ApiAnswer:
        for answer in self.answers:
            if answer.get("method", request.method).upper() != request.method:
                continue
            if not fnmatch.fnmatchcase(request.url, str(answer.get("url", "*"))):
                continue
            if answer.get("error"):
                return ApiAnswer(None, error=str(answer["error"]))
            return ApiAnswer(int(answer.get("status", 200)), answer.get("body"))
        self.unanswered.append(f"{request.method} {request.url}")
        return ApiAnswer(None, error="the test has no answer for this call")

    def run_action(self, name: str, context: ActionContext, timeout: float) -> ActionOutcome:
        result, error = custom_actions.run(name, context, timeout)
        return ActionOutcome(result, error)


def run_file(program: Program, document: Any) -> list[Outcome]:
    """Every conversation of a test file's document."""
    if not isinstance(document, dict) or not isinstance(document.get("conversations"), list):
        return [Outcome("(file)", ["a test file holds `conversations`, a list"])]
    shared = document.get("apis") or []
    return [
        run_conversation(program, conversation, shared, index)
        for index, conversation in enumerate(document["conversations"])
    ]


def run_conversation(
    program: Program, conversation: Any, shared_apis: list[dict[str, Any]], index: int = 0
) -> Outcome:
    if not isinstance(conversation, dict) or not isinstance(conversation.get("steps"), list):
        return Outcome(f"conversation {index + 1}", ["a conversation holds `steps`, a list"])
    wrong = _wrong_shapes(conversation, {"user": dict, "sessionData": dict, "apis": list})
    if wrong or not isinstance(shared_apis, list):
        return Outcome(f"conversation {index + 1}", wrong or ["`apis` of the file is a list"])
    outcome = Outcome(str(conversation.get("name") or f"conversation {index + 1}"))
    actions = _FileActions([*(conversation.get("apis") or []), *shared_apis])
    run = _Run(Engine(program, actions), conversation, outcome)
    for number, step in enumerate(conversation["steps"], 1):
        try:
            run.take(step, f"step {number}")
        except (_Stop, TooLarge, Unsendable, PatternTooSlow, TooManyHops) as stop:
            outcome.failures.append(f"step {number}: {stop}")
            break
    for call in actions.unanswered:
        outcome.failures.append(f"no answer in `apis` for the call {call}")
    return outcome


def _postback(value: Any) -> dict[str, Any]:
    """A postback step's fields, as the wire's `postbackMessage` has them."""
    value = value or {}
    if not isinstance(value, dict):
        raise _Stop("a postback step holds an object")
    for name in ("title", "payload", "nextDialogstateId"):
        if not isinstance(value.get(name, ""), str | None):
            raise _Stop(f"`{name}` of a postback step is a string")
    pairs = value.get("sessionDataToSet") or []
    if not isinstance(pairs, list) or not all(
        isinstance(pair, dict) and isinstance(pair.get("key"), str) for pair in pairs
    ):
        raise _Stop("`sessionDataToSet` of a postback step is a list of {key, value}")
    return value


def _wrong_shapes(conversation: dict[str, Any], shapes: dict[str, type]) -> list[str]:
    """What is wrong with the optional fields of `shapes` that `conversation` has."""
    return [
        f"`{name}` of a conversation is {'an object' if shape is dict else 'a list'}"
        for name, shape in shapes.items()
        if conversation.get(name) is not None and not isinstance(conversation[name], shape)
    ]


class _Stop(Exception):
    """A step that cannot be taken: the conversation ends there."""


class _Run:
    def __init__(self, engine: Engine, conversation: dict[str, Any], outcome: Outcome) -> None:
        self.engine = engine
        self.outcome = outcome
        self.memory = Memory()
        self.user = conversation.get("user") or {}
        self.session_data = conversation.get("sessionData") or {}
        self.can_offload = bool(conversation.get("offloading", True))
        self.last: list[Output] = []
        self.time = DEFAULT_TIME

    def take(self, step: Any, where: str) -> None:
        kind, value = _step(step)
        handlers: dict[str, Callable[[Any, str], None]] = {
            "bot": self._expect_bot,
            "variables": self._expect_variables,
            "state": self._expect_state,
            "offload": self._offload_answer,
        }
        if kind in _USER_STEPS:
            self._user(kind, value)
        elif kind in handlers:
            handlers[kind](value, where)
        else:
            raise _Stop(f"unknown step {kind!r}")

    def _user(self, kind: str, value: Any) -> None:
        message = self._message(kind, value)
        self.time += 1
        message["receivedAt"] = self.time
        if self.user and "user" not in message:
            message["user"] = self.user
        if self.session_data:
            message["sessionData"] = {**self.session_data, **message.get("sessionData", {})}
            self.session_data = {}
        self._apply(self.engine.step(self.memory, message, can_offload=self.can_offload))

    def _apply(self, turn: Turn) -> None:
        check_variables(self.memory, turn.memory)
        self.memory = turn.memory
        self.last = turn.outputs

    def _message(self, kind: str, value: Any) -> dict[str, Any]:
        if kind == "intro":
            return {"kind": "intro"}
        if kind == "say":
            if isinstance(value, dict):
                if not isinstance(value.get("sessionData", {}), dict):
                    raise _Stop("`sessionData` of a say step is an object")
                extra = {"sessionData": value["sessionData"]} if "sessionData" in value else {}
                return {"kind": "text", "text": str(value.get("text", "")), **extra}
            return {"kind": "text", "text": str(value)}
        if kind == "press":
            return self._press(str(value))
        if kind == "location":
            if not isinstance(value, dict) or not {"lat", "long"} <= value.keys():
                raise _Stop("a location step holds `lat` and `long`")
            return {"kind": "location", "coordinates": {"lat": value["lat"], "long": value["long"]}}
        return {"kind": "postback", "title": None, **_postback(value)}

    def _press(self, title: str) -> dict[str, Any]:
        """The postback of the button or quick reply titled `title` in the bot's last
        messages."""
        for output in self.last:
            for found in _pressables(output.body):
                if str(found.get("title", "")).casefold() == title.casefold():
                    return {
                        "kind": "postback",
                        "title": found["title"],
                        "payload": found["payload"],
                    }
        shown = [str(b.get("title")) for o in self.last for b in _pressables(o.body)]
        raise _Stop(f"nothing to press titled {title!r}; the bot offered {shown}")

    def _offload_answer(self, value: Any, where: str) -> None:
        if value == "failed":
            self._apply(self.engine.offload_failed(self.memory))
        elif value != "accepted":
            raise _Stop("offload is `accepted` or `failed`")

    def _expect_bot(self, value: Any, where: str) -> None:
        expected = value if isinstance(value, list) else [value]
        said = [shown(output) for output in self.last]
        wanted = [_wanted(item, output) for item, output in _paired(expected, self.last)]
        if said != wanted:
            diff = difflib.unified_diff(wanted, said, "expected", "the bot said", lineterm="")
            self.outcome.failures.append(f"{where}: the bot's answer differs\n" + "\n".join(diff))

    def _expect_variables(self, value: Any, where: str) -> None:
        if not isinstance(value, dict | None):
            raise _Stop("a variables step holds an object: each name and the value it holds")
        wrong = []
        for name, wanted in (value or {}).items():
            actual = lookup(self.memory.variables, str(name))
            if actual != wanted:
                wrong.append(f"  {name}: expected {_json(wanted)}, holds {_json(actual)}")
        if wrong:
            self.outcome.failures.append(f"{where}: variables differ\n" + "\n".join(wrong))

    def _expect_state(self, value: Any, where: str) -> None:
        if self.memory.state != value:
            self.outcome.failures.append(
                f"{where}: expected state {value!r}, the bot is in {self.memory.state!r}"
            )


def _step(step: Any) -> tuple[str, Any]:
    if isinstance(step, str):
        return step, None
    if isinstance(step, dict) and len(step) == 1:
        ((kind, value),) = step.items()
        return str(kind), value
    raise _Stop(f"a step is one key and its value, not {_json(step)}")


def _paired(expected: list[Any], outputs: list[Output]) -> Iterator[tuple[Any, Output | None]]:
    for index, item in enumerate(expected):
        yield item, outputs[index] if index < len(outputs) else None


def _wanted(item: Any, output: Output | None) -> str:
    """The line an expected message stands for: a string as it is; an object is compared with
    the message's fields it names, and shown as the message when they match."""
    if isinstance(item, dict):
        if output is not None and _contains(output.body, item):
            return shown(output)
        return _json(item)
    return str(item)


def _contains(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            key in actual and _contains(actual[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(wanted)
            and all(_contains(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return bool(actual == wanted)


def shown(output: Output) -> str:
    """One line for what the bot did: a text with its quick replies or buttons in brackets,
    `image: URL`, `event: NAME`, `offload: {PAYLOAD}`, or the message as JSON."""
    body = output.body
    if output.kind == "offload":
        return f"offload: {_json(body['payload'])}"
    if body.get("type") == "event":
        return f"event: {body['name']}"
    options = "".join(f" [{item.get('title')}]" for item in _pressables(body))
    if "text" in body:
        return str(body["text"]) + options
    attachment = body.get("attachment") or {}
    payload = attachment.get("payload") or {}
    if attachment.get("type") == "template":
        if payload.get("template_type") == "button":
            return str(payload.get("text")) + options
        titles = " | ".join(str(e.get("title")) for e in payload.get("elements", []))
        return f"{payload.get('template_type')}: {titles}{options}"
    if "url" in payload:
        return f"{attachment.get('type')}: {payload['url']}"
    return _json(body)


def _pressables(value: Any) -> Iterator[dict[str, Any]]:
    """Quick replies and postback buttons, wherever they are in a message."""
    if isinstance(value, dict):
        pressable = isinstance(value.get("payload"), str) and "title" in value
        if pressable and (value.get("type", "postback") == "postback" or "content_type" in value):
            yield value
        for item in value.values():
            yield from _pressables(item)
    elif isinstance(value, list):
        for item in value:
            yield from _pressables(item)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
