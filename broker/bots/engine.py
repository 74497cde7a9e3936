"""The dialogue engine: one user message in, the bot's answers out.

Pure: no Redis, Celery or network. API calls and custom actions go through the `Actions`
object it is given (`broker.bots.actions`), each with a hard time limit; a turn's calls
together have at most CALL_BUDGET seconds of limits.

A value over VARIABLE_MAX_BYTES that a `set` fills in, or an answer that fills in more than
ANSWER_MAX_BYTES, raises TooLarge (`broker.bots.rendering`): the turn fails as any other that
raises, and its message ends as a dead letter of turns. So does a message that is no
BotMessage once its variables are filled in (Unsendable: a `{{link}}` URL a user set to
`javascript:...`, say), a definition's regex that runs past its time limit (PatternTooSlow,
`broker.bots.patterns`), and a message that leads through more than MAX_HOPS states without
waiting for the user (TooManyHops: a loop of states, most likely).
What comes from outside is no fault of the definition: an API answer whose `save` is over
VARIABLE_MAX_BYTES takes the call's `onError`, and a custom action's result that is not of
its types (`messages` a string), too large, not JSON (NaN, say) or more than
ANSWER_MAX_MESSAGES messages takes the action's.

The variables together are held to a limit too (CONVERSATION_VARIABLES_BYTES by default), by
whoever runs the engine, once as its turn ends (`check_variables`): measuring them takes
serializing them all, too much for every write or state. Past it the turn fails (TooLarge)
whichever step grew them, an API call's `save` or a custom action's as much as a `set`: the
total is the definition's doing, what it keeps and never unsets, not one answer's.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from broker.bots import conditions, entities, inputs, patterns
from broker.bots.actions import Actions, ApiAnswer, ApiRequest, NoActions, has_header
from broker.bots.botmessages import BOT_MESSAGE, SENT
from broker.bots.custom_actions import ActionContext, ActionResult
from broker.bots.payloads import PayloadKey, is_ours
from broker.bots.program import (
    Ask,
    Branch,
    Call,
    Emit,
    End,
    Listen,
    Next,
    Node,
    Offload,
    Program,
    Run,
    Say,
    SetVariables,
    UnsetVariables,
    compile_definition,
)
from broker.bots.rendering import (
    Room,
    TooLarge,
    Unsendable,
    answer_room,
    render_json,
    render_message,
    render_value,
)
from broker.bots.variables import assign, lookup, path, total_size, unset
from broker.core import strict_json
from broker.core.defaults import (
    ANSWER_MAX_MESSAGES,
    CONVERSATION_VARIABLES_BYTES,
    VARIABLE_MAX_BYTES,
)
from broker.core.validation import first_fault

#: States one message may lead through without waiting for the user; past them the turn
#: fails (TooManyHops).
MAX_HOPS = 100
#: States of such a path that TooManyHops names: the last ones, where a loop shows.
_HOPS_NAMED = 8
#: Seconds of time limits that one message's API calls and custom actions may use up.
CALL_BUDGET = 10.0

log = logging.getLogger(__name__)


class TooManyHops(ValueError):
    """One message led through more than MAX_HOPS states without waiting for the user."""


#: What running a definition may fail with, by the definition's doing rather than the code's:
#: a bot turn that raises one fails (its message parked after its tries); a hand-back to a
#: state is refused.
RUN_FAULTS = (TooManyHops, TooLarge, Unsendable, patterns.PatternTooSlow)


@dataclass
class Memory:
    """What the bot remembers of one conversation."""

    state: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    #: The input the next user text answers: `{"state", "tries"}`, or version 1's
    #: `{"variable", "next"}`.
    awaiting: dict[str, Any] | None = None
    #: The conversation reached an end state: the next message starts over.
    ended: bool = False

    def to_json(self) -> str:
        raw: dict[str, Any] = {
            "state": self.state,
            "variables": self.variables,
            "awaiting": self.awaiting,
        }
        if self.ended:
            raw["ended"] = True
        return json.dumps(raw)

    @classmethod
    def from_json(cls, text: str | None) -> Memory:
        if not text:
            return cls()
        raw = json.loads(text)
        return cls(
            raw.get("state"),
            raw.get("variables") or {},
            raw.get("awaiting"),
            bool(raw.get("ended")),
        )

    def copy(self) -> Memory:
        return Memory(self.state, dict(self.variables), self.awaiting, self.ended)


@dataclass(frozen=True)
class Output:
    """An effect of a turn: a BotMessage to send, or an offload to request."""

    kind: str  # "message" | "offload"
    body: dict[str, Any]


@dataclass
class Turn:
    memory: Memory
    outputs: list[Output] = field(default_factory=list)
    #: Seconds of call time limits still available in this turn.
    budget: float = CALL_BUDGET
    today: dt.date | None = None
    #: What may still be filled in for this answer: its messages, events, offload and API
    #: requests (TooLarge past it).
    room: Room = field(default_factory=answer_room)
    #: The message answered, whose id names the turn's API calls (`Idempotency-Key`).
    message_id: str | None = None
    calls: int = 0


def absorb(memory: Memory, message: dict[str, Any]) -> Memory:
    """The conversation after what a message tells without a dialogue step: its `sessionData`
    and the user's names. Also what a paused bot keeps of the messages it does not answer."""
    variables = dict(memory.variables)
    given = (message.get("sessionData") or {}).items()
    # Outer names first, whatever the order of the object's keys (which JSON leaves open):
    # `{"a.b": 2, "a": 1}` keeps both, as `{"a": 1, "a.b": 2}` does.
    for name, value in sorted(given, key=lambda item: item[0].count(".")):
        assign(variables, name, value)
    user = message.get("user") or {}
    for name in ("firstName", "lastName", "preferredLanguage"):
        if user.get(name):
            variables[f"user.{name}"] = user[name]
    return Memory(memory.state, variables, memory.awaiting, memory.ended)


class Engine:
    """Runs one bot definition (already validated), or its compiled program."""

    def __init__(
        self,
        definition: dict[str, Any] | Program,
        actions: Actions | None = None,
        payloads: PayloadKey | None = None,
    ):
        self.program = (
            definition if isinstance(definition, Program) else compile_definition(definition)
        )
        self.actions: Actions = actions or NoActions()
        #: Seals the payloads of the buttons the bot sends, and opens those pressed: the
        #: conversation's key (`PayloadKey.for_conversation`), else one of this engine's own.
        self.payloads = payloads or PayloadKey.random()

    @property
    def states(self) -> dict[str, Node]:
        return self.program.states

    # Each entry point runs within a budget of regex time (`patterns.budget`).

    def step(self, memory: Memory, message: dict[str, Any], *, can_offload: bool) -> Turn:
        turn = Turn(
            self._with_constants(absorb(memory, message)),
            today=_day_of(message),
            message_id=message.get("messageId"),
        )
        with patterns.budget():
            target = self._target(turn, message)
            if target is not None:
                self._enter(turn, target, can_offload=can_offload)
        return turn

    def offload_failed(self, memory: Memory) -> Turn:
        """The offload of an earlier turn was refused or could not be delivered."""
        turn = Turn(self._with_constants(memory.copy()))
        failed = self._offload_failed_state(memory.state)
        if failed:
            with patterns.budget():
                self._enter(turn, failed, can_offload=False)
        return turn

    def go_to(self, memory: Memory, state_id: str, *, can_offload: bool) -> Turn:
        turn = Turn(self._with_constants(Memory(memory.state, dict(memory.variables), None)))
        with patterns.budget():
            self._enter(turn, state_id, can_offload=can_offload)
        return turn

    def _with_constants(self, memory: Memory) -> Memory:
        """`memory` with the definition's `variables` as this version has them: the bot's
        constants, which no input overrides. What holds one of them inside (an object
        `kitchen` for the constant `kitchen.url`) goes."""
        constants = self.program.variables
        if constants:
            variables = memory.variables
            for outer in [name for name in variables if _holds_constant(name, constants)]:
                del variables[outer]
            for name, value in sorted(constants.items(), key=lambda item: item[0].count(".")):
                assign(variables, name, value)
        return memory

    # --- where a message leads -------------------------------------------------------

    def _target(self, turn: Turn, message: dict[str, Any]) -> str | None:
        """The state a user message leads to, with what it tells stored in the variables."""
        memory = turn.memory
        kind = message["kind"]
        restart = kind == "intro" or memory.ended
        if restart or memory.state is None:
            self._begin(memory)
        if restart:
            if kind != "intro":
                memory.variables["lastMessage"] = _text_of(message, memory.variables)
            return self.program.start
        if kind == "postback":
            pressed = self._pressed(memory, message)
            if pressed is not None:
                memory.awaiting = None
                memory.variables["lastMessage"] = str(message.get("title") or "")
                return pressed
        text = _text_of(message, memory.variables)
        memory.variables["lastMessage"] = text
        if memory.awaiting:
            return self._answered(turn, text)
        node = self.program.states.get(memory.state or "")
        listen = node.then if node is not None and isinstance(node.then, Listen) else Listen()
        return self._understood(turn, text, listen) or self.program.fallback

    def _begin(self, memory: Memory) -> None:
        """A conversation (re)starting: it is waiting for nothing."""
        memory.awaiting = None
        memory.ended = False

    def _pressed(self, memory: Memory, message: dict[str, Any]) -> str | None:
        """Where a button press leads: its `nextDialogstateId`, or the target of a payload
        this conversation's key opens; its `sessionDataToSet` and the payload's params are
        set then, but not over the bot's constants. A payload that is not ours or does not
        open (forged, another conversation's, unsigned `sb1.`), or a target this version
        has no state for (a button of an older version, say), is read as text (None), and
        sets nothing."""
        if message.get("nextDialogstateId"):
            target: str | None = str(message["nextDialogstateId"])
            params: list[dict[str, Any]] = []
        else:
            opened = self.payloads.open(message.get("payload") or "")
            if opened is None:
                return None
            target, params = opened
        if target not in self.program.states:
            return None
        constants = self.program.variables
        for item in [*params, *(message.get("sessionDataToSet") or [])]:
            name = item["key"]
            if _is_constant(name, constants):
                log.info("a press would set the bot's constant %r: not set", name)
            else:
                assign(memory.variables, name, item.get("value"))
        return target

    def _answered(self, turn: Turn, text: str) -> str | None:
        """The answer to an input: stored and on to `next`, or asked again, or given up on."""
        memory = turn.memory
        awaiting, memory.awaiting = memory.awaiting or {}, None
        if "state" not in awaiting:  # version 1: any text, as it is
            memory.variables[awaiting["variable"]] = text
            return str(awaiting["next"])
        node = self.program.states.get(awaiting["state"])
        if node is None or not isinstance(node.then, Ask):
            return self.program.fallback
        ask = node.then
        value = self._read(node.id, ask, text, turn.today)
        if value is not None:
            memory.variables[ask.variable] = value
            return ask.next
        understood = self._understood(turn, text, ask.listen)
        if understood is not None:
            return understood
        tries = int(awaiting.get("tries", 0)) + 1
        if tries >= ask.tries:
            return ask.on_fail or self.program.fallback
        retry = ask.retry or next((s for s in node.steps if isinstance(s, Say)), None)
        if retry is not None:
            self._say(turn, retry)
        memory.awaiting = {"state": node.id, "tries": tries}
        return None

    def _read(self, state_id: str, ask: Ask, text: str, today: dt.date | None) -> Any:
        value = inputs.read(ask.expect, text, today=today, options=ask.options)
        if value is None:
            return None
        if ask.pattern is not None and not patterns.search(
            ask.pattern, str(value), where=f"the input of state {state_id!r}"
        ):
            return None
        if ask.expect == "number":
            if ask.least is not None and value < ask.least:
                return None
            if ask.most is not None and value > ask.most:
                return None
        return value

    def _understood(self, turn: Turn, text: str, listen: Listen) -> str | None:
        """The state a text leads to by a keyword (the state's, then the bot's) or an intent
        (the state's own, then the bot's that apply here), or None."""
        for route in (*listen.routes, *self.program.routes):
            if _matches(route, text):
                return str(route["next"])
        matcher = self.program.matcher
        if matcher is None:
            return None
        state = turn.memory.state or ""
        among = set(listen.intents) | {
            name
            for name, intent in self.program.intents.items()
            if intent.next is not None and (intent.states is None or state in intent.states)
        }
        found = matcher.best(text, among)
        if found is None or found.confidence < self.program.threshold:
            return None
        variables = turn.memory.variables
        variables["intent.name"] = found.intent
        variables["intent.confidence"] = found.confidence
        intent = self.program.intents[found.intent]
        for variable, entity in intent.entities.items():
            value = entities.find(entity, text, lists=self.program.entities, today=turn.today)
            if value is not None:
                variables[variable] = value
        return listen.intents.get(found.intent) or intent.next

    # --- entering states -------------------------------------------------------------

    def _enter(self, turn: Turn, state_id: str, *, can_offload: bool) -> None:
        """Enter a state and follow where it leads (at most MAX_HOPS states: TooManyHops)."""
        next_id: str | None = state_id
        visited: list[str] = []
        while (node := self.program.states.get(next_id or "")) is not None:
            if len(visited) == MAX_HOPS:
                last = " -> ".join([*visited[-_HOPS_NAMED:], node.id])
                raise TooManyHops(
                    f"the message led through more than {MAX_HOPS} states without waiting "
                    f"for the user (a loop?); the last ones: ... -> {last}"
                )
            visited.append(node.id)
            turn.memory.state = node.id
            next_id = self._run(turn, node, can_offload=can_offload)

    def _run(self, turn: Turn, node: Node, *, can_offload: bool) -> str | None:
        """A state's steps, then what follows them: the next state's id, or None to stop."""
        variables = turn.memory.variables
        for step in node.steps:
            if isinstance(step, Say):
                self._say(turn, step)
            elif isinstance(step, SetVariables):
                for name, value in step.values.items():
                    variables[name] = render_json(value, variables, _variable_room(name))
            elif isinstance(step, UnsetVariables):
                for name in step.names:
                    unset(variables, name)
            elif isinstance(step, Emit):
                data = render_json(step.data, variables, turn.room)
                body = {"type": "event", "name": step.name, "data": {} if data is None else data}
                turn.outputs.append(Output("message", body))
            elif isinstance(step, Offload):
                if can_offload:
                    payload = render_json(step.payload, variables, turn.room)
                    turn.outputs.append(Output("offload", {"payload": payload}))
                    return None
                return step.on_fail or self.program.offload_failed
        return self._follow(turn, node)

    def _follow(self, turn: Turn, node: Node) -> str | None:
        memory = turn.memory
        then = node.then
        if isinstance(then, Next):
            return then.target
        if isinstance(then, Ask):
            memory.awaiting = (
                {"variable": then.variable, "next": then.next}
                if then.raw
                else {"state": node.id, "tries": 0}
            )
            return None
        if isinstance(then, Branch):
            for condition, target in then.rules:
                if conditions.holds(condition, memory.variables):
                    return target
            return then.otherwise
        if isinstance(then, Call):
            return self._call(turn, then)
        if isinstance(then, Run):
            return self._run_action(turn, node, then)
        if isinstance(then, End):
            kept = {k: v for k, v in memory.variables.items() if k.startswith("user.")}
            turn.memory = Memory(None, kept, None, ended=True)
            return None
        return None

    def _say(self, turn: Turn, say: Say) -> None:
        variables = turn.memory.variables
        locale = lookup(variables, "locale") or lookup(variables, "user.preferredLanguage")
        for message in say.pick(locale, self.program.language):
            self._send(turn, message)

    def _time_for(self, turn: Turn, wanted: float) -> float:
        granted = min(wanted, turn.budget)
        turn.budget -= granted
        return granted

    def _call(self, turn: Turn, call: Call) -> str | None:
        variables = turn.memory.variables
        limit = self._time_for(turn, float(call.request.get("timeout", 5.0)))
        if limit <= 0:
            answer = ApiAnswer(None, error="this message's time for calls is used up")
        else:
            headers = {
                name: str(render_value(v, variables, turn.room))
                for name, v in call.request.get("headers", {}).items()
            }
            turn.calls += 1
            if turn.message_id is not None and not has_header(headers, "Idempotency-Key"):
                # The same on a turn run again (after a crash): the API can tell a repeat.
                headers["Idempotency-Key"] = f"{turn.message_id}-{turn.calls}"
            request = ApiRequest(
                method=call.request.get("method", "GET"),
                url=str(render_value(call.request["url"], variables, turn.room)),
                headers=headers,
                body=render_json(call.request.get("body"), variables, turn.room),
                timeout=limit,
            )
            answer = self.actions.call_api(request)
        variables["api.status"] = answer.status
        if answer.error is not None:
            variables["api.error"] = answer.error
        elif answer.status is not None and not 200 <= answer.status < 300:
            variables["api.error"] = f"HTTP {answer.status}"
        else:
            variables.pop("api.error", None)
        if answer.status is None:
            return call.on_error or self.program.fallback
        if 200 <= answer.status < 300:
            saved = {}
            for name, where in call.save.items():
                value = answer.status if where == "$status" else path(answer.body, where)
                if value is not None:
                    saved[name] = value
            error = _too_large(saved)
            if error is not None:
                variables["api.error"] = error
                return call.on_error or self.program.fallback
            variables.update(saved)
            return call.next
        return call.on.get(f"{answer.status // 100}xx") or call.on_error or self.program.fallback

    def _run_action(self, turn: Turn, node: Node, run: Run) -> str | None:
        memory = turn.memory
        limit = self._time_for(turn, run.timeout)
        failure = run.on_error or self.program.fallback
        if limit <= 0:
            memory.variables["action.error"] = "this message's time for calls is used up"
            return failure
        locale = lookup(memory.variables, "locale") or lookup(
            memory.variables, "user.preferredLanguage"
        )
        context = ActionContext(dict(memory.variables), locale, node.id)
        outcome = self.actions.run_action(run.action, context, limit)
        result = outcome.result
        messages: list[dict[str, Any]] = []
        error = outcome.error
        if result is not None and error is None:
            error = _result_fault(run.action, result, len(turn.outputs))
        if result is not None and error is None:
            messages, error = _action_messages(run.action, result.messages)
        if result is None or error is not None:
            memory.variables["action.error"] = error or "no result"
            return failure
        memory.variables.pop("action.error", None)
        for name, value in result.variables.items():
            if value is None:
                unset(memory.variables, name)
            else:
                memory.variables[name] = value
        for message in messages:
            self._send(turn, message, fill=False)
        if result.next is not None and result.next in self.program.states:
            return result.next
        return run.next

    def _send(self, turn: Turn, message: dict[str, Any], *, fill: bool = True) -> None:
        """A message of the bot, filled in (unless `fill` is False: a custom action's is sent
        as it made it), among the turn's outputs; a text with nothing to say is left out. One
        that is no BotMessage once filled in raises Unsendable."""
        variables = turn.memory.variables if fill else None
        rendered = render_message(message, variables, self.payloads, turn.room)
        if rendered is None:
            log.info("state %r: a text is empty once filled in, not sent", turn.memory.state)
            return
        turn.outputs.append(Output("message", rendered))

    def _offload_failed_state(self, state_id: str | None) -> str | None:
        node = self.program.states.get(state_id or "")
        if node is not None:
            for step in node.steps:
                if isinstance(step, Offload) and step.on_fail:
                    return step.on_fail
        return self.program.offload_failed


def check_variables(
    before: Memory, after: Memory, limit: int = CONVERSATION_VARIABLES_BYTES
) -> None:
    """TooLarge when a turn left the variables taking more than `limit` bytes together, and
    more than they took before it; one that does not grow them passes, so that a
    conversation over the limit (it was lowered) can go on and shrink."""
    if after.variables is before.variables:
        return
    size = total_size(after.variables)
    if size > limit and size > total_size(before.variables):
        raise TooLarge(
            f"the session's variables would take {size} bytes together, over their limit of {limit}"
        )


def _is_constant(name: str, constants: dict[str, Any]) -> bool:
    """Whether setting `name` would set a constant or a name under one, or hold one inside."""
    return (
        name in constants
        or any(name.startswith(constant + ".") for constant in constants)
        or _holds_constant(name, constants)
    )


def _holds_constant(name: str, constants: dict[str, Any]) -> bool:
    prefix = name + "."
    return name not in constants and any(constant.startswith(prefix) for constant in constants)


def _too_large(values: dict[str, Any]) -> str | None:
    """Why one of the values a call or an action gives variables cannot be kept, or None."""
    try:
        for name, value in values.items():
            _variable_room(name).take_value(value)
    except TooLarge as exc:
        return str(exc)
    return None


def _result_fault(action: str, result: ActionResult, sent: int) -> str | None:
    """Why a custom action's result cannot be used, or None: a part of it not of its type
    (`messages` a string, not a list), more messages than one answer may send (`sent` are
    out already), or variables or messages that are too large or not JSON that others can
    read (NaN, Infinity, a set, a number too large, text that is not valid Unicode)."""
    shape = _shape_fault(result)
    if shape is not None:
        return f"{action} returned {shape}"
    if sent + len(result.messages) > ANSWER_MAX_MESSAGES:
        return (
            f"{action} returned {len(result.messages)} messages: an answer sends at most "
            f"{ANSWER_MAX_MESSAGES}"
        )
    try:
        strict_json.loads(json.dumps([result.variables, result.messages], allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        log.info("custom action %s: its result is not JSON: %r", action, exc)
        return f"{action} returned what is not JSON: {_not_json(exc)}"
    kept = {name: value for name, value in result.variables.items() if value is not None}
    return _too_large(kept)


def _action_messages(action: str, given: list[Any]) -> tuple[list[dict[str, Any]], str | None]:
    """A custom action's messages as they will be sent (a string is a text), or why one of
    them is no BotMessage."""
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(given):
        body = {"text": message} if isinstance(message, str) else message
        try:
            # As it will be sent: it is not filled in (`_send`, fill=False).
            BOT_MESSAGE.validate_python(body, context=SENT)
        except ValidationError as exc:
            log.info("custom action %s: messages[%d]: %s", action, index, exc)
            fault = first_fault(exc, f"messages[{index}]")
            return [], f"{action} returned an invalid message at {fault.field}: {fault.message}"
        messages.append(body)
    return messages, None


def _shape_fault(result: ActionResult) -> str | None:
    """What in a custom action's result is not of its type (the dataclass checks none), or
    None."""
    if not isinstance(result.variables, dict):
        return f"variables that are not a dict: {type(result.variables).__name__}"
    if not all(isinstance(name, str) for name in result.variables):
        return "a variable whose name is not a string"
    if not isinstance(result.messages, list):
        return f"messages that are not a list: {type(result.messages).__name__}"
    for index, message in enumerate(result.messages):
        if not isinstance(message, (str, dict)):
            return f"messages[{index}] that is neither a text nor a message object"
    if result.next is not None and not isinstance(result.next, str):
        return f"a next state that is not a string: {type(result.next).__name__}"
    return None


def _not_json(exc: Exception) -> str:
    """Why a value is not JSON, in words for the bot's users rather than Python's."""
    if isinstance(exc, RecursionError):
        return "nested too deep"
    if isinstance(exc, ValueError) and strict_json.is_number_too_large(exc):
        return strict_json.NUMBER_TOO_LARGE
    return str(exc)


def _variable_room(name: str) -> Room:
    """The room of one variable's value: a larger one fails the turn (TooLarge)."""
    return Room(VARIABLE_MAX_BYTES, f"the value of the variable {name!r}")


def _day_of(message: dict[str, Any]) -> dt.date | None:
    received = message.get("receivedAt")
    if not isinstance(received, (int, float)):
        return None
    return dt.datetime.fromtimestamp(received, tz=dt.UTC).date()


def _text_of(message: dict[str, Any], variables: dict[str, Any]) -> str:
    """What a message says, as text for routes and input; a location is also stored."""
    if message["kind"] == "postback":
        # A payload of ours is no one's words (a button it cannot lead by): its title is.
        payload = message.get("payload")
        return str(payload if payload and not is_ours(payload) else message.get("title") or "")
    if message["kind"] == "location":
        coordinates = message["coordinates"]
        variables["location.lat"] = coordinates["lat"]
        variables["location.long"] = coordinates["long"]
        return f"{coordinates['lat']},{coordinates['long']}"
    return str(message.get("text", ""))


def _matches(route: dict[str, Any], text: str) -> bool:
    """Whether the text is the route's keyword (`exact`) or holds it as whole words: `hi`
    is in "hi there" and "say hi!", not in "which one"."""
    wanted = str(route["match"]).casefold()
    said = text.strip().casefold()
    if route.get("exact"):
        return said == wanted
    return re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", said) is not None
