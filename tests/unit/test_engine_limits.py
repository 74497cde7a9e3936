"""What the engine writes into variables and fills into its answer is bounded: past the limits
of broker/core/defaults.py the turn fails (TooLarge, naming the variable and the limit),
before a value of that size is built; its message ends as a dead letter of turns."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from broker.bots import conversation_tests, definition
from broker.bots.actions import ActionOutcome, ApiAnswer
from broker.bots.custom_actions import ActionResult
from broker.bots.engine import Engine, Memory, check_variables
from broker.bots.program import compile_definition
from broker.bots.rendering import TooLarge
from broker.bots.variables import total_size
from broker.channels.channel import Channel
from broker.conversations import dead_turns, turns
from broker.core import ids
from broker.core.connection import Redis
from broker.core.defaults import (
    ANSWER_MAX_BYTES,
    ANSWER_MAX_MESSAGES,
    CONVERSATION_VARIABLES_BYTES,
    VARIABLE_MAX_BYTES,
)
from broker.core.settings import Settings
from tests.conversations import new_channel, queued_bodies, read_meta, user_says
from tests.fakes import RecordingSender
from tests.unit.test_engine_states import FakeActions, bot, intro, texts

#: Doubles `x` at every state it passes: 32 MB within one message's MAX_HOPS, unbounded.
DOUBLING: dict[str, Any] = {
    "version": 2,
    "startState": "a",
    "states": {"a": {"type": "set", "set": {"x": "{{x}}{{x}}y"}, "next": "a"}},
}
_LIMIT = f"the value of the variable 'x' is over its limit of {VARIABLE_MAX_BYTES} bytes"


def test_a_value_doubled_in_a_loop_of_states_fails_at_the_limit() -> None:
    engine = Engine(definition.validate(DOUBLING))
    with pytest.raises(TooLarge) as raised:
        engine.step(Memory(), {"kind": "intro"}, can_offload=False)
    assert str(raised.value) == _LIMIT


def test_a_value_just_within_the_limit_is_set() -> None:
    big = "é" * (VARIABLE_MAX_BYTES // 2)  # two bytes each in UTF-8
    states = {"start": {"type": "set", "set": {"x": "{{big}}", "y": "{{big}}"}, "next": "n"}}
    states["n"] = {"say": "set"}
    turn = intro(Engine(bot(states)), sessionData={"big": big})
    assert texts(turn) == ["set"] and turn.memory.variables["y"] == big
    over = {"start": {"type": "set", "set": {"x": "{{big}}!"}}}
    with pytest.raises(TooLarge, match=_LIMIT):
        intro(Engine(bot(over)), sessionData={"big": big})


def test_the_render_stops_at_the_limit_instead_of_building_the_whole_value() -> None:
    big = "x" * (VARIABLE_MAX_BYTES - 1)
    many = "{{big}}" * 10_000  # 640 MB were it built
    engine = Engine(bot({"start": {"type": "set", "set": {"x": many}}}))
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match=_LIMIT):
            intro(engine, sessionData={"big": big})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * VARIABLE_MAX_BYTES


def test_messages_of_one_answer_are_bounded_together() -> None:
    big = "x" * (VARIABLE_MAX_BYTES - 1)
    states = {"start": {"say": ["{{big}}"] * (ANSWER_MAX_BYTES // VARIABLE_MAX_BYTES + 1)}}
    with pytest.raises(TooLarge, match="what the bot filled in for one message is over"):
        intro(Engine(bot(states)), sessionData={"big": big})


def test_what_an_api_call_saves_is_bounded_and_too_much_takes_its_error_branch() -> None:
    states = {
        "start": {
            "type": "api",
            "request": {"url": "https://api.example/x"},
            "save": {"x": "data", "y": "other"},
            "next": "n",
            "onError": "e",
        },
        "n": {"say": "saved"},
        "e": {"say": "{{api.error}}"},
    }
    fits = FakeActions(ApiAnswer(200, {"data": {"list": ["a"] * 100}}))
    assert texts(intro(Engine(bot(states), fits))) == ["saved"]
    too_large = FakeActions(ApiAnswer(200, {"data": ["a"] * VARIABLE_MAX_BYTES, "other": 1}))
    turn = intro(Engine(bot(states), too_large))
    assert texts(turn) == ["the value of the variable 'x' is over its limit of 65536 bytes"]
    assert "x" not in turn.memory.variables and "y" not in turn.memory.variables


def test_what_a_custom_action_sets_is_bounded_and_too_much_takes_its_error_branch() -> None:
    states = {"start": {"type": "action", "action": "shop.actions:price", "next": "n"}}
    states["start"]["onError"] = "e"
    states["n"] = {"say": "done"}
    states["e"] = {"say": "{{action.error}}"}
    result = ActionOutcome(ActionResult(variables={"x": "a" * (VARIABLE_MAX_BYTES + 1)}))
    turn = intro(Engine(bot(states), FakeActions(result=result)))
    assert texts(turn) == ["the value of the variable 'x' is over its limit of 65536 bytes"]
    assert "x" not in turn.memory.variables


@pytest.mark.parametrize(
    "result",
    [
        ActionResult(variables={"x": float("nan")}),
        ActionResult(variables={"x": {1, 2}}),
        ActionResult(messages=[{"text": "t", "quickReplies": [{"title": float("inf")}]}]),
        ActionResult(messages=["hi"] * (ANSWER_MAX_MESSAGES + 1)),
        # Sent as it is made, so `{{...}}` is no URL: an error, not a turn that fails.
        ActionResult(messages=[{"attachment": {"type": "image", "payload": {"url": "{{x}}"}}}]),
        # Not of the result's types (the dataclass checks none): not one message a letter,
        # nor a turn that fails on each try.
        ActionResult(messages="hello"),  # type: ignore[arg-type]
        ActionResult(messages=[1]),
        ActionResult(variables=[1, 2]),  # type: ignore[arg-type]
        ActionResult(variables={1: "x"}),  # type: ignore[dict-item]
        ActionResult(next=["n"]),  # type: ignore[arg-type]
        ActionResult(next=5),  # type: ignore[arg-type]
        ActionResult(variables={"x": 10**5000}),
    ],
)
def test_a_custom_action_result_that_is_not_json_or_too_many_messages_is_an_error(
    result: ActionResult,
) -> None:
    states: dict[str, Any] = {
        "start": {"type": "action", "action": "shop.actions:f", "next": "n", "onError": "e"},
        "n": {"say": "done"},
        "e": {"say": "failed"},
    }
    turn = intro(Engine(bot(states), FakeActions(result=ActionOutcome(result))))
    assert texts(turn) == ["failed"]
    assert turn.memory.variables["action.error"].startswith("shop.actions:f returned")
    assert "x" not in turn.memory.variables


@pytest.mark.parametrize(
    ("result", "error"),
    [
        (ActionResult(messages="hello"), "messages that are not a list: str"),  # type: ignore[arg-type]
        (ActionResult(variables=[1, 2]), "variables that are not a dict: list"),  # type: ignore[arg-type]
        (ActionResult(next=["n"]), "a next state that is not a string: list"),  # type: ignore[arg-type]
        (ActionResult(variables={"x": 10**5000}), "what is not JSON: a number is too large"),
        (
            ActionResult(messages=["hi", {"text": "t", "colour": "red"}]),
            "an invalid message at messages[1].colour: Extra inputs are not permitted",
        ),
    ],
)
def test_why_a_custom_action_result_cannot_be_used_is_told_in_a_few_plain_words(
    result: ActionResult, error: str
) -> None:
    """`{{action.error}}` may be shown to the user: no validation dump, link or Python advice."""
    states: dict[str, Any] = {
        "start": {"type": "action", "action": "shop.actions:f", "next": "n", "onError": "e"},
        "n": {"say": "done"},
        "e": {"say": "{{action.error}}"},
    }
    turn = intro(Engine(bot(states), FakeActions(result=ActionOutcome(result))))
    assert texts(turn) == [f"shop.actions:f returned {error}"]


def test_a_conversation_test_that_goes_past_a_limit_fails_its_step() -> None:
    program = compile_definition(definition.validate(DOUBLING))
    document = {"conversations": [{"name": "grows", "steps": ["intro", {"state": "a"}]}]}
    (outcome,) = conversation_tests.run_file(program, document)
    assert outcome.failures == [f"step 1: {_LIMIT}"]


def test_a_message_past_the_limit_is_parked_and_the_next_answered(
    fake_redis: Redis, settings: Settings
) -> None:
    grows_on_demand = {
        "version": 2,
        "startState": "start",
        "fallbackState": "echo",
        "routes": [{"match": "grow", "exact": True, "next": "grow"}],
        "states": {
            "start": {"say": "hi"},
            "grow": {"type": "set", "set": {"x": "{{x}}{{x}}y"}, "next": "grow"},
            "echo": {"say": "You said: {{lastMessage}}"},
        },
    }
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings, grows_on_demand)
    for text in ("grow", "after"):
        user_says(r, settings, sender, channel, text)
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    for _ in range(settings.turn_attempts + 1):
        turns.run_pending(r, settings, sender, key)
    replies = [body["message"]["text"] for body in queued_bodies(r, key, channel.id)]
    assert replies == ["You said: after"]
    (dead,) = dead_turns.list_page(r, offset=0, limit=10)[0]
    assert dead["item"]["text"] == "grow"
    assert dead["error"] == f"TooLarge: {_LIMIT}"


def test_a_turn_that_grows_the_variables_past_their_limit_together_fails() -> None:
    small, large = Memory(variables={"a": "x" * 10}), Memory(variables={"a": "x" * 100})
    with pytest.raises(TooLarge) as raised:
        check_variables(small, large, limit=50)
    size = total_size(large.variables)
    assert size == len('{"a":""}') + 100
    assert str(raised.value) == (
        f"the session's variables would take {size} bytes together, over their limit of 50"
    )
    check_variables(small, large, limit=size)  # at the limit: kept
    # Over a limit lowered since, a turn that does not grow them goes on, and one that shrinks.
    check_variables(large, Memory(variables={"a": "y" * 100}), limit=50)
    check_variables(large, small, limit=50)


def test_a_conversation_test_whose_variables_grow_past_their_limit_fails_its_step() -> None:
    big = "x" * (VARIABLE_MAX_BYTES - 100)
    names = [f"v{n}" for n in range(CONVERSATION_VARIABLES_BYTES // VARIABLE_MAX_BYTES + 1)]
    states = {"start": {"type": "set", "set": dict.fromkeys(names, "{{big}}"), "next": "n"}}
    states["n"] = {"say": "set"}
    program = compile_definition(bot(states))
    document = {"conversations": [{"sessionData": {"big": big}, "steps": ["intro"]}]}
    (outcome,) = conversation_tests.run_file(program, document)
    (failure,) = outcome.failures
    assert failure.startswith("step 1: the session's variables would take ")
    assert failure.endswith(f"over their limit of {CONVERSATION_VARIABLES_BYTES}")
    fewer = dict.fromkeys(names[:-2], "{{big}}")
    states["start"]["set"] = fewer
    (outcome,) = conversation_tests.run_file(compile_definition(bot(states)), document)
    assert outcome.failures == []


#: Adds a kilobyte to `log` at each `grow`; `forget` unsets it.
GROWS_A_LOG: dict[str, Any] = {
    "version": 2,
    "startState": "start",
    "fallbackState": "echo",
    "routes": [
        {"match": "grow", "exact": True, "next": "grow"},
        {"match": "forget", "exact": True, "next": "forget"},
    ],
    "states": {
        "start": {"say": "hi"},
        "grow": {"type": "set", "set": {"log": "{{log}}" + "x" * 1000}, "next": "grown"},
        "grown": {"say": "grown"},
        "forget": {"type": "set", "unset": ["log"], "next": "forgot"},
        "forgot": {"say": "forgot"},
        "echo": {"say": "You said: {{lastMessage}}"},
    },
}


def _answer_one_by_one(
    r: Redis, settings: Settings, channel: Channel, *said: str
) -> tuple[list[str], list[dict[str, Any]]]:
    """Each text said and its turn run (and run again until it is parked) before the next;
    the bot's replies and the dead letters of turns."""
    sender = RecordingSender()
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    for text in said:
        user_says(r, settings, sender, channel, text)
        for _ in range(settings.turn_attempts):
            turns.run_pending(r, settings, sender, key)
    replies = [body["message"]["text"] for body in queued_bodies(r, key, channel.id)]
    return replies, dead_turns.list_page(r, offset=0, limit=10)[0]


def test_a_message_that_grows_the_variables_past_their_limit_is_parked(
    fake_redis: Redis, settings: Settings
) -> None:
    settings = settings.with_changes(conversation_variables_bytes=2500)
    channel = new_channel(fake_redis, settings, GROWS_A_LOG)
    replies, dead = _answer_one_by_one(
        fake_redis, settings, channel, "grow", "grow", "grow", "forget", "grow"
    )
    assert replies == ["grown", "grown", "forgot", "grown"]
    (parked,) = dead
    assert parked["item"]["text"] == "grow"
    assert parked["error"].startswith("TooLarge: the session's variables would take 30")
    assert parked["error"].endswith("bytes together, over their limit of 2500")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    assert len(read_meta(fake_redis, key).memory.variables["log"]) == 1000


@pytest.mark.parametrize(
    ("state", "actions"),
    [
        (
            {"type": "api", "request": {"url": "https://api.example/x"}, "save": {"a": "a"}},
            FakeActions(ApiAnswer(200, {"a": "x" * 3000})),
        ),
        (
            {"type": "action", "action": "shop.actions:remember"},
            FakeActions(result=ActionOutcome(ActionResult(variables={"a": "x" * 3000}))),
        ),
    ],
    ids=["api-save", "custom-action"],
)
def test_what_an_api_call_or_a_custom_action_keeps_counts_toward_the_limit(
    fake_redis: Redis, settings: Settings, state: dict[str, Any], actions: FakeActions
) -> None:
    """What they give that takes the variables past their limit together takes no `onError`:
    the total is what the definition keeps, not one answer; the message is parked."""
    r, sender = fake_redis, RecordingSender()
    settings = settings.with_changes(conversation_variables_bytes=2500)
    states = {
        "start": {"say": "hi"},
        "keep": {**state, "next": "kept", "onError": "failed"},
        "kept": {"say": "kept"},
        "failed": {"say": "failed"},
    }
    routes = [{"match": "keep", "exact": True, "next": "keep"}]
    channel = new_channel(r, settings, bot(states, routes=routes, fallbackState="start"))
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    user_says(r, settings, sender, channel, "keep")
    for _ in range(settings.turn_attempts):
        turns.run_pending(r, settings, sender, key, actions)
    user_says(r, settings, sender, channel, "hello")
    turns.run_pending(r, settings, sender, key, actions)
    assert [body["message"]["text"] for body in queued_bodies(r, key, channel.id)] == ["hi"]
    (parked,) = dead_turns.list_page(r, offset=0, limit=10)[0]
    assert parked["item"]["text"] == "keep"
    assert parked["error"].endswith("over their limit of 2500")
