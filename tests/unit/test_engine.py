"""The dialogue engine: pure, so tested without Redis."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from broker.bots import definition, patterns
from broker.bots.engine import MAX_HOPS, Engine, Memory, TooManyHops, absorb
from broker.bots.patterns import PatternTooSlow
from broker.bots.payloads import PayloadKey
from broker.core.errors import ValidationFailed

PIZZA: dict[str, Any] = {
    "startState": "welcome",
    "fallbackState": "sorry",
    "routes": [{"match": "menu", "next": "menu"}],
    "states": [
        {
            "id": "welcome",
            "messages": [
                {
                    "text": "Hi {{user.firstName}}! Which pizza?",
                    "quick_replies": [
                        {
                            "title": "Margherita",
                            "goto": "size",
                            "params": [{"key": "pizza", "value": "margherita"}],
                        }
                    ],
                }
            ],
        },
        {
            "id": "size",
            "messages": [{"text": "What size for your {{pizza}}?"}],
            "input": {"variable": "size", "next": "done"},
        },
        {
            "id": "done",
            "actions": [{"type": "setVariable", "key": "order", "value": "{{size}} {{pizza}}"}],
            "messages": [{"text": "One {{order}} coming up."}],
            "next": "bye",
        },
        {"id": "bye", "messages": [{"text": "Bye!"}]},
        {"id": "menu", "messages": [{"text": "Margherita or Funghi."}]},
        {"id": "sorry", "messages": [{"text": "Sorry, I did not get that."}]},
    ],
}


KEY = PayloadKey.random()


def texts(turn: Any) -> list[str]:
    return [output.body.get("text") for output in turn.outputs]


def test_intro_enters_the_start_state_with_variables_filled_in() -> None:
    engine = Engine(definition.validate(PIZZA))
    turn = engine.step(Memory(), {"kind": "intro", "user": {"firstName": "Ann"}}, can_offload=False)
    assert texts(turn) == ["Hi Ann! Which pizza?"]
    assert turn.memory.state == "welcome"


def test_a_quick_reply_payload_leads_to_its_state_and_sets_its_params() -> None:
    engine = Engine(definition.validate(PIZZA))
    first = engine.step(Memory(), {"kind": "intro"}, can_offload=False)
    payload = first.outputs[0].body["quick_replies"][0]["payload"]
    assert isinstance(payload, str) and "goto" not in first.outputs[0].body["quick_replies"][0]

    turn = engine.step(
        first.memory,
        {"kind": "postback", "payload": payload, "title": "Margherita"},
        can_offload=False,
    )

    assert texts(turn) == ["What size for your margherita?"]
    assert turn.memory.variables["pizza"] == "margherita"


def test_input_is_stored_and_next_states_chain() -> None:
    engine = Engine(definition.validate(PIZZA))
    state = Memory(
        state="size", variables={"pizza": "funghi"}, awaiting={"variable": "size", "next": "done"}
    )
    turn = engine.step(state, {"kind": "text", "text": "large"}, can_offload=False)
    assert texts(turn) == ["One large funghi coming up.", "Bye!"]
    assert turn.memory.awaiting is None


def test_routes_then_fallback() -> None:
    engine = Engine(definition.validate(PIZZA))
    assert texts(
        engine.step(Memory("bye"), {"kind": "text", "text": "show the MENU"}, can_offload=False)
    ) == ["Margherita or Funghi."]
    assert texts(engine.step(Memory("bye"), {"kind": "text", "text": "??"}, can_offload=False)) == [
        "Sorry, I did not get that."
    ]


def test_postback_with_next_dialogstate_and_variables_to_set() -> None:
    engine = Engine(definition.validate(PIZZA))
    message = {
        "kind": "postback",
        "nextDialogstateId": "size",
        "sessionDataToSet": [{"key": "pizza", "value": "diavola"}],
    }
    assert texts(engine.step(Memory(), message, can_offload=False)) == [
        "What size for your diavola?"
    ]


@pytest.mark.parametrize(
    "pressed",
    [
        {"title": "Ghost", "nextDialogstateId": "no_such_state"},
        {"title": "Ghost", "payload": KEY.seal("no_such_state", [])},
    ],
)
def test_a_press_whose_state_this_version_lacks_is_read_as_text(pressed: dict[str, Any]) -> None:
    engine = Engine(definition.validate(PIZZA), payloads=KEY)
    turn = engine.step(Memory("bye"), {"kind": "postback", **pressed}, can_offload=False)
    assert texts(turn) == ["Sorry, I did not get that."]
    assert turn.memory.state == "sorry"


def test_variables_is_merged_before_the_turn() -> None:
    engine = Engine(definition.validate(PIZZA))
    state = Memory(state="size", awaiting={"variable": "size", "next": "done"})
    turn = engine.step(
        state,
        {"kind": "text", "text": "small", "sessionData": {"pizza": "tonno"}},
        can_offload=False,
    )
    assert texts(turn)[0] == "One small tonno coming up."


def test_echo_offload_without_an_offloading_webhook_goes_to_the_failed_state() -> None:
    engine = Engine(definition.validate({"template": "echo"}))
    turn = engine.step(Memory(), {"kind": "text", "text": "human"}, can_offload=False)
    assert texts(turn) == ["No agent is available right now."]
    offloading = engine.step(Memory(), {"kind": "text", "text": "human"}, can_offload=True)
    assert [(o.kind, o.body) for o in offloading.outputs] == [
        ("offload", {"payload": {"reason": "user asked"}})
    ]


def test_echo_template_answers() -> None:
    engine = Engine(definition.validate({"template": "echo"}))
    assert texts(engine.step(Memory(), {"kind": "intro"}, can_offload=False)) == [
        "Hello! I repeat what you say."
    ]
    assert texts(engine.step(Memory(), {"kind": "text", "text": "hi"}, can_offload=False)) == [
        "You said: hi"
    ]


def test_a_pressed_button_s_title_is_the_last_message() -> None:
    """Without it, the echo bot answered a press with the text before it."""
    engine = Engine(definition.validate({"template": "echo"}))
    said = engine.step(Memory(), {"kind": "text", "text": "hi"}, can_offload=False).memory
    pressed = {"kind": "postback", "title": "Large", "nextDialogstateId": "echo"}
    turn = engine.step(said, pressed, can_offload=False)
    assert texts(turn) == ["You said: Large"]
    assert turn.memory.variables["lastMessage"] == "Large"


def test_a_state_that_loops_through_next_fails_the_turn_naming_the_states() -> None:
    looping = {
        "startState": "a",
        "states": [
            {"id": "a", "messages": [{"text": "a"}], "next": "b"},
            {"id": "b", "messages": [{"text": "b"}], "next": "a"},
        ],
    }
    engine = Engine(definition.validate(looping))
    with pytest.raises(TooManyHops, match=f"more than {MAX_HOPS} states.* -> a -> b -> a$"):
        engine.step(Memory(), {"kind": "intro"}, can_offload=False)


def test_a_chain_of_fifty_states_without_a_loop_is_followed_to_its_end() -> None:
    chain = {
        "version": 2,
        "startState": "c0",
        "states": {
            **{f"c{n}": {"type": "goto", "next": f"c{n + 1}"} for n in range(50)},
            "c50": {"say": "at the end"},
        },
    }
    turn = Engine(definition.validate(chain)).step(Memory(), {"kind": "intro"}, can_offload=False)
    assert texts(turn) == ["at the end"]
    assert turn.memory.state == "c50"


def test_payloads_round_trip_and_foreign_ones_are_not_ours() -> None:
    payload = KEY.seal("size", [{"key": "pizza", "value": 1}])
    assert KEY.open(payload) == ("size", [{"key": "pizza", "value": 1}])
    assert KEY.open("SOME_CLIENT_PAYLOAD") is None
    assert KEY.open("sb1.!!notbase64") is None


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        ({**PIZZA, "startState": "nowhere"}, "definition.startState"),
        (
            {**PIZZA, "states": [*PIZZA["states"], {"id": "x", "next": "missing"}]},
            "definition.states[6].next",
        ),
        (
            {**PIZZA, "states": [{"id": "welcome", "messages": [{"text": ""}]}]},
            "definition.states[0].messages[0].text",
        ),
        ({"template": "nope"}, "definition.template"),
    ],
)
def test_definitions_that_do_not_validate_name_the_faulty_path(
    broken: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        definition.validate(broken)
    assert caught.value.field == field


def test_variables_are_filled_into_urls_too() -> None:
    bot = {
        "startState": "a",
        "states": [
            {
                "id": "a",
                "messages": [
                    {
                        "attachment": {
                            "type": "template",
                            "payload": {
                                "template_type": "button",
                                "text": "Your order",
                                "buttons": [
                                    {"type": "web_url", "title": "Track", "url": "{{trackUrl}}"}
                                ],
                            },
                        }
                    }
                ],
            }
        ],
    }
    message = {"kind": "intro", "sessionData": {"trackUrl": "https://example.com/t/1"}}
    turn = Engine(definition.validate(bot)).step(Memory(), message, can_offload=False)
    button = turn.outputs[0].body["attachment"]["payload"]["buttons"][0]
    assert button["url"] == "https://example.com/t/1"


def test_an_object_in_session_data_replaces_what_its_namespace_held() -> None:
    engine = Engine(definition.validate(PIZZA))
    state = Memory(state="bye", variables={"order.size": "M", "order.crust": "thin", "x": 1})
    turn = engine.step(
        state,
        {"kind": "text", "text": "??", "sessionData": {"order": {"size": "L"}}},
        can_offload=False,
    )
    variables = turn.memory.variables
    assert variables["order"] == {"size": "L"} and variables["x"] == 1
    assert "order.size" not in variables and "order.crust" not in variables


@pytest.mark.parametrize(
    "given",
    [{"a": 1, "a.b": 2, "a..c": 3}, {"a.b": 2, "a": 1, "a..c": 3}, {"a..c": 3, "a.b": 2, "a": 1}],
)
def test_within_one_message_the_order_of_session_data_keys_does_not_matter(
    given: dict[str, int],
) -> None:
    memory = absorb(Memory(variables={"a.old": 0}), {"kind": "text", "sessionData": given})
    assert memory.variables == {"a": 1, "a.b": 2, "a..c": 3}


ROUTES: dict[str, Any] = {
    "version": 2,
    "startState": "w",
    "fallbackState": "fallback",
    "routes": [
        {"match": "hi", "next": "greet"},
        {"match": "no", "next": "cancel"},
        {"match": "gift card", "next": "gift"},
    ],
    "states": {
        "w": {"say": "welcome"},
        "greet": {"say": "hello"},
        "cancel": {"say": "cancelled"},
        "gift": {"say": "gift"},
        "fallback": {"say": "fallback"},
    },
}


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("hi", "hello"),
        ("Hi, there!", "hello"),
        ("oh HI", "hello"),
        ("which pizzas do you sell?", "fallback"),
        ("I know what I want", "fallback"),
        ("nothing", "fallback"),
        ("no.", "cancelled"),
        ("no\u00e9l", "fallback"),  # a letter with an accent is part of the word
        ("a Gift Card please", "gift"),
        ("gift cards", "fallback"),
    ],
)
def test_a_route_matches_its_keyword_as_whole_words(text: str, reply: str) -> None:
    engine = Engine(definition.validate(ROUTES))
    turn = engine.step(Memory("w"), {"kind": "text", "text": text}, can_offload=False)
    assert texts(turn) == [reply]


#: Exponential for `re` on "aaa...a!": thirty-odd letters hold a worker for minutes.
CATASTROPHIC = "^(a|aa)+$"


def test_a_regex_that_runs_past_its_time_limit_fails_the_turn() -> None:
    slow = {
        "version": 2,
        "startState": "ask",
        "states": {
            "ask": {
                "type": "input",
                "say": "code?",
                "variable": "code",
                "expect": "text",
                "pattern": CATASTROPHIC,
                "next": "check",
            },
            "check": {
                "type": "condition",
                "branches": [{"if": {"var": "ref", "matches": CATASTROPHIC}, "next": "ok"}],
                "else": "ok",
            },
            "ok": {"say": "ok"},
        },
    }
    engine = Engine(definition.validate(slow))
    awaiting = Memory("ask", awaiting={"state": "ask", "tries": 0})
    said = {"kind": "text", "text": "aa"}
    assert texts(engine.step(awaiting.copy(), said, can_offload=False)) == ["ok"]
    with pytest.raises(PatternTooSlow, match="of the input of state 'ask' took more than"):
        engine.step(awaiting.copy(), {"kind": "text", "text": "a" * 40 + "!"}, can_offload=False)
    slow_data = {**said, "sessionData": {"ref": "a" * 40 + "!"}}
    with pytest.raises(PatternTooSlow, match="of a condition on 'ref' took more than"):
        engine.step(awaiting.copy(), slow_data, can_offload=False)


def test_the_searches_for_one_message_share_a_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each search just under its own limit, a chain of conditions held a worker for minutes:
    together they may take MESSAGE_PATTERN_SECONDS. Here each search takes 0.3 s of a clock
    the test moves."""
    clock = [0.0]

    def perf_counter() -> float:
        clock[0] += 0.3
        return clock[0]

    monkeypatch.setattr(patterns, "time", SimpleNamespace(perf_counter=perf_counter))
    chain: dict[str, Any] = {
        f"c{n}": {
            "type": "condition",
            "branches": [{"if": {"var": "ref", "matches": "^z"}, "next": "ok"}],
            "else": f"c{n + 1}",
        }
        for n in range(4)
    }
    chained: dict[str, Any] = {
        "version": 2,
        "startState": "c0",
        "fallbackState": "c0",
        "states": {**chain, "c4": {"say": "four"}, "ok": {"say": "ok"}},
    }
    four = Engine(definition.validate(chained))
    said = {"kind": "text", "text": "hi", "sessionData": {"ref": "a"}}
    # The fourth search begins with 0.1 s of the budget left.
    assert texts(four.step(Memory(), said, can_offload=False)) == ["four"]
    five = Engine(
        definition.validate(
            {**chained, "states": {**chained["states"], "c4": {**chain["c0"], "else": "ok"}}}
        )
    )
    with pytest.raises(PatternTooSlow, match=r"took more than 1\.0 s together for one message"):
        five.step(Memory(), said, can_offload=False)
    # The next message has a budget of its own.
    assert texts(four.step(Memory(), said, can_offload=False)) == ["four"]
