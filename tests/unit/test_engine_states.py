"""The engine on version 2 definitions: each kind of state, variables, locales; pure, so tested
without Redis, its API calls and custom actions answered by fakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from broker.bots import definition
from broker.bots.actions import ActionOutcome, ApiAnswer, ApiRequest
from broker.bots.custom_actions import ActionContext, ActionResult
from broker.bots.engine import CALL_BUDGET, Engine, Memory, Turn
from tests.wire_fixtures import BOT_MESSAGE_KINDS, bot_message


@dataclass
class FakeActions:
    """Answers API calls and custom actions as told, and records them."""

    answer: ApiAnswer = field(default_factory=lambda: ApiAnswer(200, {}))
    result: ActionOutcome = field(default_factory=lambda: ActionOutcome(ActionResult()))
    requests: list[ApiRequest] = field(default_factory=list)
    actions: list[tuple[str, ActionContext, float]] = field(default_factory=list)

    def call_api(self, request: ApiRequest) -> ApiAnswer:
        self.requests.append(request)
        return self.answer

    def run_action(self, name: str, context: ActionContext, timeout: float) -> ActionOutcome:
        self.actions.append((name, context, timeout))
        return self.result


def bot(states: dict[str, Any], **top: Any) -> dict[str, Any]:
    return definition.validate({"version": 2, "startState": "start", "states": states, **top})


def texts(turn: Turn) -> list[Any]:
    return [o.body.get("text", o.body.get("name")) for o in turn.outputs]


def intro(engine: Engine, memory: Memory | None = None, **message: Any) -> Turn:
    return engine.step(memory or Memory(), {"kind": "intro", **message}, can_offload=True)


def say(engine: Engine, turn: Turn, text: str, **message: Any) -> Turn:
    return engine.step(turn.memory, {"kind": "text", "text": text, **message}, can_offload=True)


def test_messages_of_every_kind_with_variables_then_next() -> None:
    messages = [bot_message(kind) for kind in BOT_MESSAGE_KINDS]
    engine = Engine(
        bot(
            {
                "start": {"say": ["Hi {{user.firstName}}, you are {{profile.age}}.", *messages]},
            }
        )
    )
    turn = intro(engine, user={"firstName": "Ann"}, sessionData={"profile": {"age": 7}})
    assert turn.outputs[0].body == {"text": "Hi Ann, you are 7."}
    assert [o.body for o in turn.outputs[1:]] == messages


def test_a_message_state_chains_to_next_and_then_waits() -> None:
    engine = Engine(bot({"start": {"say": "a", "next": "b"}, "b": {"say": "b"}}))
    turn = intro(engine)
    assert texts(turn) == ["a", "b"]
    assert turn.memory.state == "b" and turn.memory.awaiting is None


def test_locale_picks_the_variant_by_language_then_the_bot_s_default() -> None:
    engine = Engine(
        bot(
            {"start": {"say": {"en": ["Hello"], "fr": ["Bonjour"], "nl-BE": ["Hallo"]}}},
            language="en",
        )
    )
    assert texts(intro(engine, user={"preferredLanguage": "fr-CA"})) == ["Bonjour"]
    assert texts(intro(engine, sessionData={"locale": "nl"})) == ["Hallo"]
    assert texts(intro(engine, user={"preferredLanguage": "de"})) == ["Hello"]
    assert texts(intro(engine)) == ["Hello"]


@pytest.mark.parametrize(
    ("expect", "extra", "answer", "stored"),
    [
        ("text", {}, "  anything at all ", "anything at all"),
        ("number", {}, "about 12,5 kg", 12.5),
        ("number", {}, "three", 3),
        ("email", {}, "mail me at Ann.Lee@Example.COM", "ann.lee@example.com"),
        ("phone", {}, "+32 (470) 12-34-56", "+32470123456"),
        ("date", {}, "on 25/12/2026", "2026-12-25"),
        ("date", {}, "tomorrow", "2026-11-22"),
        ("yesno", {}, "Yes please", True),
        ("yesno", {}, "nope", False),
        ("choice", {"choices": ["small", "large"]}, "LARGE!", "large"),
        ("choice", {"choices": {"large": ["big", "xl"]}}, "a big one", "large"),
        ("choice", {"choices": ["medium", "large"]}, "meduim", "medium"),
    ],
)
def test_typed_input_is_normalised_into_its_variable(
    expect: str, extra: dict[str, Any], answer: str, stored: Any
) -> None:
    engine = Engine(
        bot(
            {
                "start": {
                    "type": "input",
                    "say": "?",
                    "variable": "form.value",
                    "expect": expect,
                    "next": "done",
                    **extra,
                },
                "done": {"say": "got {{form.value}}"},
            }
        )
    )
    turn = say(engine, intro(engine), answer, receivedAt=1795262400.0)
    assert turn.memory.variables["form.value"] == stored
    assert turn.memory.state == "done"


def test_a_bad_answer_is_asked_again_and_the_last_try_takes_its_own_branch() -> None:
    engine = Engine(
        bot(
            {
                "start": {
                    "type": "input",
                    "say": "How many?",
                    "variable": "n",
                    "expect": "number",
                    "min": 1,
                    "max": 9,
                    "retry": "A number from 1 to 9, please.",
                    "tries": 3,
                    "next": "done",
                    "onFail": "give_up",
                },
                "done": {"say": "{{n}}"},
                "give_up": {"say": "Let us stop here."},
            }
        )
    )
    turn = intro(engine)
    turn = say(engine, turn, "many")
    assert texts(turn) == ["A number from 1 to 9, please."]
    turn = say(engine, turn, "42")
    assert texts(turn) == ["A number from 1 to 9, please."]
    turn = say(engine, turn, "none")
    assert texts(turn) == ["Let us stop here."]
    assert turn.memory.awaiting is None


def test_a_bad_answer_that_is_an_intent_follows_the_intent() -> None:
    engine = Engine(
        bot(
            {
                "start": {"type": "input", "variable": "e", "expect": "email", "next": "start"},
                "agent": {"say": "An agent comes."},
            },
            intents={"human": {"examples": ["talk to a human"], "next": "agent"}},
        )
    )
    assert texts(say(engine, intro(engine), "let me talk to a human")) == ["An agent comes."]


@pytest.mark.parametrize(
    ("variables", "reached"),
    [
        ({"order.count": 7}, "many"),
        ({"order.count": "2", "order.size": "L"}, "small_large"),
        ({"order.size": "XL"}, "listed"),
        ({"order.count": 1, "order.email": "a@b.co"}, "pattern"),
        ({"order.count": 1, "order.note": "x"}, "noted"),
        ({}, "otherwise"),
    ],
)
def test_the_condition_router_takes_the_first_branch_that_holds(
    variables: dict[str, Any], reached: str
) -> None:
    states: dict[str, Any] = {
        "start": {
            "type": "condition",
            "branches": [
                {"if": {"var": "order.count", "greater": 5}, "next": "many"},
                {
                    "if": {
                        "all": [
                            {"var": "order.count", "less": 3},
                            {"var": "order.size", "equals": "l"},
                        ]
                    },
                    "next": "small_large",
                },
                {"if": {"var": "order.size", "in": ["XL", "XXL"]}, "next": "listed"},
                {"if": {"var": "order.email", "matches": r"^\S+@\S+$"}, "next": "pattern"},
                {
                    "if": {
                        "any": [
                            {"not": {"var": "order", "exists": False}},
                            {"var": "x", "exists": True},
                        ]
                    },
                    "next": "noted",
                },
            ],
            "else": "otherwise",
        },
        **{name: {"say": name} for name in ("many", "small_large", "listed", "pattern")},
        "noted": {"say": "noted"},
        "otherwise": {"say": "otherwise"},
    }
    turn = intro(Engine(bot(states)), sessionData=variables)
    assert texts(turn) == [reached]


def test_goto_set_and_unset_event_and_end() -> None:
    engine = Engine(
        bot(
            {
                "start": {"type": "goto", "next": "set"},
                "set": {
                    "type": "set",
                    "set": {"order.size": "L", "order.count": "{{n}}", "copy": "{{order.size}}"},
                    "unset": ["draft"],
                    "next": "event",
                },
                "event": {
                    "type": "event",
                    "name": "ordered",
                    "data": {"size": "{{order.size}}"},
                    "next": "end",
                },
                "end": {"type": "end", "say": "Bye {{order.size}}"},
            }
        )
    )
    turn = intro(
        engine, sessionData={"n": 3, "draft": 1, "draft.note": "x"}, user={"firstName": "A"}
    )
    assert [o.body for o in turn.outputs] == [
        {"type": "event", "name": "ordered", "data": {"size": "L"}},
        {"text": "Bye L"},
    ]
    assert turn.memory.ended and turn.memory.state is None
    assert turn.memory.variables == {"user.firstName": "A"}
    assert texts(say(engine, turn, "hello")) == ["ordered", "Bye L"]  # it starts over


def test_an_api_call_is_templated_mapped_and_branches_by_outcome() -> None:
    states = {
        "start": {
            "type": "api",
            "request": {
                "method": "POST",
                "url": "{{api.base}}/orders/{{order.id}}",
                "headers": {"X-Order": "{{order.id}}"},
                "body": {"count": "{{order.count}}", "note": "for {{user.firstName}}"},
                "timeout": 3,
            },
            "save": {"order.eta": "data.eta", "order.first": "items.0", "order.code": "$status"},
            "next": "ok",
            "on": {"4xx": "refused"},
            "onError": "failed",
        },
        "ok": {"say": "ok {{order.eta}} {{order.first}} {{order.code}}"},
        "refused": {"say": "refused"},
        "failed": {"say": "failed: {{api.error}}"},
    }
    variables = {"api.base": "https://api.example", "order.id": "7", "order.count": 2}
    actions = FakeActions(ApiAnswer(201, {"data": {"eta": 20}, "items": ["a", "b"]}))
    engine = Engine(bot(states, variables=variables), actions)
    assert texts(intro(engine, user={"firstName": "Ann"})) == ["ok 20 a 201"]
    (request,) = actions.requests
    assert (request.method, request.url, request.timeout) == (
        "POST",
        "https://api.example/orders/7",
        3.0,
    )
    assert request.headers == {"X-Order": "7"}
    assert request.body == {"count": 2, "note": "for Ann"}
    actions.answer = ApiAnswer(404, None)
    assert texts(intro(engine)) == ["refused"]
    actions.answer = ApiAnswer(503, None)
    assert texts(intro(engine)) == ["failed: HTTP 503"]
    actions.answer = ApiAnswer(None, error="refused by outbound safety: resolves to 10.0.0.1")
    assert texts(intro(engine)) == ["failed: refused by outbound safety: resolves to 10.0.0.1"]


def test_an_api_call_names_its_message_and_its_place_in_the_answer_for_the_api() -> None:
    """`Idempotency-Key`: the same when the turn runs again, so that the API can tell."""
    a = "https://a.example/"
    states: dict[str, Any] = {
        "start": {"type": "api", "request": {"url": a, "timeout": 1}, "next": "two"},
        "two": {
            "type": "api",
            "request": {"url": a, "timeout": 1, "headers": {"Idempotency-Key": "mine"}},
            "next": "three",
        },
        "three": {"type": "api", "request": {"url": a, "timeout": 1}, "next": "end"},
        "end": {"say": "done"},
    }
    for _ in range(2):
        actions = FakeActions()
        intro(Engine(bot(states), actions), messageId="m1")
        keys = [request.headers.get("Idempotency-Key") for request in actions.requests]
        assert keys == ["m1-1", "mine", "m1-3"]


def test_a_key_the_definition_writes_in_lower_case_stands_instead_of_ours() -> None:
    """HTTP's header names are not case-sensitive: ours beside it would send the key twice."""
    request = {"url": "https://a.example/", "headers": {"idempotency-key": "{{order.id}}"}}
    states: dict[str, Any] = {"start": {"type": "api", "request": request, "next": "end"}}
    states["end"] = {"say": "done"}
    actions = FakeActions()
    intro(Engine(bot(states), actions), messageId="m1", sessionData={"order.id": "o7"})
    assert [request.headers for request in actions.requests] == [{"idempotency-key": "o7"}]


def test_without_an_action_interface_an_api_call_takes_its_error_branch() -> None:
    engine = Engine(
        bot(
            {
                "start": {
                    "type": "api",
                    "request": {"url": "https://api.example/x"},
                    "next": "ok",
                    "onError": "failed",
                },
                "ok": {"say": "ok"},
                "failed": {"say": "failed"},
            }
        )
    )
    assert texts(intro(engine)) == ["failed"]


def test_calls_of_one_message_share_a_time_budget() -> None:
    actions = FakeActions()
    states: dict[str, Any] = {
        f"call{n}": {
            "type": "api",
            "request": {"url": "https://api.example/", "timeout": 4},
            "next": f"call{n + 1}",
            "onError": "out",
        }
        for n in range(5)
    }
    states["start"] = {"type": "goto", "next": "call0"}
    states["call5"] = {"say": "done"}
    states["out"] = {"say": "out of time: {{api.error}}"}
    turn = intro(Engine(bot(states), actions))
    assert [r.timeout for r in actions.requests] == [4, 4, CALL_BUDGET - 8]
    assert texts(turn) == ["out of time: this message's time for calls is used up"]


def test_a_custom_action_gets_variables_and_gives_variables_messages_and_a_next() -> None:
    """Its messages go out as it made them: one that echoes what a user wrote fills in no
    variable."""
    actions = FakeActions(
        result=ActionOutcome(
            ActionResult(
                variables={"price": 12.5, "draft": None},
                messages=["That is {{price}}.", {"text": "Pay now?"}],
                next="pay",
            )
        )
    )
    states = {
        "start": {"type": "action", "action": "shop.actions:price", "timeout": 1.5, "next": "n"},
        "pay": {"say": "paying"},
        "n": {"say": "next"},
    }
    turn = intro(Engine(bot(states), actions), sessionData={"size": "L", "draft": 1})
    assert texts(turn) == ["That is {{price}}.", "Pay now?", "paying"]
    assert "draft" not in turn.memory.variables
    ((name, context, timeout),) = actions.actions
    assert (name, context.state, timeout, context.variables["size"]) == (
        "shop.actions:price",
        "start",
        1.5,
        "L",
    )


@pytest.mark.parametrize(
    "outcome",
    [
        ActionOutcome(error="shop.actions:price did not finish within 1 s"),
        ActionOutcome(ActionResult(messages=[{"attachment": "not one"}])),
    ],
)
def test_a_custom_action_that_fails_takes_its_error_branch(outcome: ActionOutcome) -> None:
    states = {
        "start": {"type": "action", "action": "shop.actions:price", "onError": "e", "next": "n"},
        "e": {"say": "error"},
        "n": {"say": "next"},
    }
    turn = intro(Engine(bot(states), FakeActions(result=outcome)))
    assert texts(turn) == ["error"] and turn.memory.variables["action.error"]


def test_offload_and_its_own_failure_branch() -> None:
    states = {
        "start": {
            "type": "offload",
            "say": "One moment.",
            "payload": {"who": "{{user.firstName}}"},
            "onFail": "sorry",
        },
        "sorry": {"say": "No one is free."},
    }
    engine = Engine(bot(states))
    turn = intro(engine, user={"firstName": "Ann"})
    assert [(o.kind, o.body) for o in turn.outputs] == [
        ("message", {"text": "One moment."}),
        ("offload", {"payload": {"who": "Ann"}}),
    ]
    assert texts(engine.offload_failed(turn.memory)) == ["No one is free."]
    refused = engine.step(Memory(), {"kind": "intro"}, can_offload=False)
    assert texts(refused) == ["One moment.", "No one is free."]


def test_session_data_to_set_and_button_params_set_namespaced_variables() -> None:
    engine = Engine(
        bot(
            {
                "start": {
                    "say": [
                        {
                            "text": "Size?",
                            "quick_replies": [
                                {
                                    "title": "L",
                                    "goto": "chosen",
                                    "params": [{"key": "order.size", "value": "{{default}}"}],
                                }
                            ],
                        }
                    ]
                },
                "chosen": {"say": "{{order.size}} for {{order.for}}"},
            }
        )
    )
    turn = intro(engine, sessionData={"default": "large"})
    payload = turn.outputs[0].body["quick_replies"][0]["payload"]
    pressed = engine.step(
        turn.memory,
        {
            "kind": "postback",
            "payload": payload,
            "sessionDataToSet": [{"key": "order.for", "value": "Ann"}],
        },
        can_offload=False,
    )
    assert texts(pressed) == ["large for Ann"]
