"""The intent matcher, property by property: case, accents, punctuation, word order, typos,
unseen words, confidence, entities; and the engine's threshold, scopes and fallback."""

from __future__ import annotations

from typing import Any

import pytest

from broker.bots import definition
from broker.bots import matcher as matcher_module
from broker.bots.engine import Engine, Memory
from broker.bots.matcher import Matcher
from broker.bots.words import TYPO_MAX_LETTERS, deletions, distance, fold

INTENTS = {
    "order": ["I want to order a pizza", "can I get a pizza", "pizza delivery"],
    "track": ["where is my order", "track my order", "when will my food arrive"],
    "cancel": ["cancel my order", "I want to cancel", "stop the order"],
    "hours": ["when are you open", "opening hours", "what time do you close"],
    "cafe": ["a café crème", "un café au lait"],
}
MATCHER = Matcher(INTENTS)


def best(text: str) -> str | None:
    found = MATCHER.best(text)
    return found.intent if found else None


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("CAN I GET A PIZZA", "order"),  # case
        ("cafe creme", "cafe"),  # accents, either way
        ("un CAFÉ au lait", "cafe"),
        ("where... is my order?!", "track"),  # punctuation
        ("my order, where is it", "track"),  # word order
        ("pizza delivery I want", "order"),
        ("trak my ordr", "track"),  # small typos
        ("opening hourz", "hours"),
        ("cancle my order", "cancel"),  # letters swapped
        ("hey mate can I get a pizza tonight", "order"),  # unseen words
    ],
)
def test_the_intended_intent_ranks_first(text: str, intent: str) -> None:
    assert best(text) == intent


def test_a_full_match_is_confident_and_unseen_words_lower_confidence() -> None:
    exact = MATCHER.best("track my order")
    padded = MATCHER.best("track my order right now buddy")
    assert exact is not None and padded is not None
    assert exact.confidence == 1.0
    assert 0.5 < padded.confidence < exact.confidence


def test_text_about_something_else_is_not_confident() -> None:
    for text in ("the weather in paris", "tell me a joke", "asdf"):
        found = MATCHER.best(text)
        assert found is None or found.confidence < 0.5, (text, found)


def test_typos_are_within_a_budget_that_grows_with_the_word() -> None:
    assert best("piz") is None  # three letters may carry no typo
    assert best("pizz") == "order"  # four may carry one
    assert distance("order", "odrer") == 1 and distance("delivery", "dleivrey") == 2
    assert best("dleivrey") == "order"
    assert best("zzz") is None


def test_rank_can_be_limited_to_some_intents() -> None:
    assert [m.intent for m in MATCHER.rank("cancel my order", among={"track"})] == ["track"]


def test_an_entity_placeholder_matches_any_value_or_synonym() -> None:
    matcher = Matcher(
        {"order": ["a {pizza} please"], "drink": ["a {drink} please"]},
        {"pizza": ["margherita", "funghi", "mushroom"], "drink": ["cola", "water"]},
    )
    assert [m.intent for m in matcher.rank("a mushroom please")][:1] == ["order"]
    assert [m.intent for m in matcher.rank("a margarita please")][:1] == ["order"]  # typo
    assert [m.intent for m in matcher.rank("water please")][:1] == ["drink"]


def test_folding() -> None:
    assert fold("Crème-Brûlée, s'il vous plaît!") == "creme brulee sil vous plait"
    assert fold("Straße") == "strasse"


def engine(**top: Any) -> Engine:
    return Engine(
        definition.validate(
            {
                "version": 2,
                "startState": "start",
                "fallbackState": "fallback",
                "intents": {
                    "order": {
                        "examples": ["I want {count} {pizza} pizzas for {date}"],
                        "next": "ordered",
                        "entities": {
                            "order.pizza": "pizza",
                            "order.n": "number",
                            "order.on": "date",
                        },
                    },
                    "yes": {"examples": ["yes", "sure"]},
                    "human": {"examples": ["talk to a human"], "next": "agent", "states": ["help"]},
                },
                "entities": {
                    "pizza": {"values": {"margherita": ["margarita"], "funghi": ["mushroom"]}},
                    "count": {"values": ["one", "two", "three", "2", "3"]},
                },
                "states": {
                    "start": {"say": "Hi", "intents": {"yes": "confirmed"}},
                    "help": {"say": "How can I help?"},
                    "ordered": {"say": "{{order.n}} {{order.pizza}} on {{order.on}}"},
                    "confirmed": {"say": "confirmed"},
                    "agent": {"say": "agent"},
                    "fallback": {"say": "fallback"},
                },
                **top,
            }
        )
    )


def say(bot: Engine, state: str, text: str) -> list[Any]:
    message = {"kind": "text", "text": text, "receivedAt": 1795262400.0}
    turn = bot.step(Memory(state), message, can_offload=False)
    return [o.body["text"] for o in turn.outputs]


def test_entities_of_the_matched_intent_fill_variables() -> None:
    bot = engine()
    assert say(bot, "start", "i want 3 mushroom pizzas for 24/12/2026") == [
        "3 funghi on 2026-12-24"
    ]


def test_scoped_intents_and_the_fallback() -> None:
    bot = engine()
    assert say(bot, "start", "sure") == ["confirmed"]  # the state's own intent
    assert say(bot, "help", "sure") == ["fallback"]  # not understood elsewhere
    assert say(bot, "help", "talk to a human") == ["agent"]  # only in the states it names
    assert say(bot, "start", "talk to a human") == ["fallback"]


def test_the_threshold_is_the_bot_s() -> None:
    assert say(engine(threshold=0.3), "help", "talk to someone") == ["agent"]
    assert say(engine(threshold=0.95), "help", "talk to someone") == ["fallback"]


def test_a_very_long_word_is_taken_as_it_is_at_a_cost_linear_in_its_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its typos would be quadratic in number (cubic in letters): a word longer than
    TYPO_MAX_LETTERS, in an example or a message, gets none, so a 10,000-letter word costs
    what reading it does."""
    made: list[int] = []

    def counted(word: str, depth: int) -> set[str]:
        found = deletions(word, depth)
        made.append(len(found) if len(word) > TYPO_MAX_LETTERS else 0)
        return found

    monkeypatch.setattr(matcher_module, "deletions", counted)
    long_example = "".join(chr(ord("a") + (i * 7) % 26) for i in range(500))
    matcher = Matcher({**INTENTS, "long": [f"{long_example} code"]})
    assert made and max(made) <= 1  # the long example word: itself only
    long_said = "".join(chr(ord("a") + (i * 11) % 26) for i in range(10_000))
    assert matcher.rank(long_said) == []
    assert max(made) <= 1
    best = matcher.best(f"{long_example} code")
    assert best is not None and best.intent == "long" and best.confidence == 1.0
