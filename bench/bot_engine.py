"""How fast the dialogue engine and its intent matcher are, in one process.

    python -m bench.bot_engine [--seconds S] [--intents N] [--messages M]

Engine: the pizza bot (examples/bots/pizza.yaml) takes whole orders, seven turns each
(intro, buttons, quick replies, typed input, the kitchen's API call answered at once by a
fake), for `--seconds` in one thread; it prints turns per second. Matcher: `--intents`
intents (12 written by hand, the rest made of made-up words, six examples each) and M
messages made from their examples with words swapped, a typo and an unknown word; it
prints the time per message and the share the best guess got right. No Redis, no network.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from broker.bots import definition, documents
from broker.bots.actions import ActionOutcome, ApiAnswer, ApiRequest
from broker.bots.custom_actions import ActionContext
from broker.bots.engine import Engine, Memory
from broker.bots.matcher import Matcher
from broker.bots.program import compile_definition

PIZZA = Path(__file__).parents[1] / "examples" / "bots" / "pizza.yaml"

WRITTEN = {
    "order": ["I want to order a pizza", "can I get a pizza", "pizza delivery please"],
    "track": ["where is my order", "track my order", "when will my food arrive"],
    "cancel": ["cancel my order", "I want to cancel", "stop the order"],
    "hours": ["when are you open", "opening hours", "what time do you close"],
    "human": ["talk to a human", "I want an agent", "speak to a person"],
    "menu": ["show me the menu", "what pizzas do you have", "what can I order"],
    "payment": ["can I pay by card", "payment methods", "do you take cash"],
    "complaint": ["my pizza was cold", "the food was bad", "I want to complain"],
    "greeting": ["hello", "hi there", "good morning"],
    "thanks": ["thank you", "thanks a lot", "cheers"],
    "refund": ["I want my money back", "refund please", "can I get a refund"],
    "allergens": ["does it contain gluten", "allergy information", "is it vegan"],
}


class _Kitchen:
    """Answers every API call at once, as the kitchen would."""

    def call_api(self, request: ApiRequest) -> ApiAnswer:
        return ApiAnswer(201, {"id": "K0001", "eta": 20})

    def run_action(self, name: str, context: ActionContext, timeout: float) -> ActionOutcome:
        return ActionOutcome(error="no custom actions in this benchmark")


def _order(engine: Engine) -> int:
    """One whole order; the number of turns it took."""
    memory = Memory()
    turns = 0

    def take(message: dict[str, Any]) -> list[dict[str, Any]]:
        nonlocal memory, turns
        turn = engine.step(memory, message, can_offload=False)
        memory = turn.memory
        turns += 1
        return [output.body for output in turn.outputs]

    def pressed(bodies: list[dict[str, Any]], index: int) -> dict[str, Any]:
        body = bodies[-1]
        options = body.get("quick_replies") or body["attachment"]["payload"]["buttons"]
        return {"kind": "postback", "title": None, "payload": options[index]["payload"]}

    said = take({"kind": "intro"})
    said = take(pressed(said, 0))
    said = take(pressed(said, 1))
    said = take(pressed(said, 2))
    take({"kind": "text", "text": "two please"})
    said = take({"kind": "text", "text": "+32 470 12 34 56"})
    said = take(pressed(said, 0))
    assert said[0]["text"].startswith("Order K0001"), said
    return turns


def engine_turns_per_second(seconds: float) -> float:
    program = compile_definition(definition.validate(documents.load(PIZZA)))
    engine = Engine(program, _Kitchen())
    turns = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        turns += _order(engine)
    return turns / (time.perf_counter() - started)


def intents(count: int, rnd: random.Random) -> dict[str, list[str]]:
    syllables = ["ka", "lo", "mi", "ter", "bra", "zon", "quil", "fe", "dor", "sap", "vin"]
    syllables += ["rus", "pel", "tos", "mar", "gen", "hul", "ix", "no", "pra"]
    words = sorted({"".join(rnd.choices(syllables, k=rnd.randint(2, 3))) for _ in range(900)})
    common = ["i", "want", "to", "the", "a", "my", "can", "you", "please", "is", "what", "how"]
    made = dict(list(WRITTEN.items())[:count])
    for n in range(count - len(made)):
        made[f"made_up_{n}"] = [
            " ".join(rnd.sample(words, rnd.randint(2, 4)) + rnd.sample(common, rnd.randint(1, 3)))
            for _ in range(6)
        ]
    return made


def messages(given: dict[str, list[str]], count: int, rnd: random.Random) -> list[tuple[str, str]]:
    """(message, intent meant): an example with its words shuffled, one letter of a longer
    word dropped, and a word no example has."""
    made = []
    names = sorted(given)
    for _ in range(count):
        intent = rnd.choice(names)
        words = rnd.choice(given[intent]).split()
        rnd.shuffle(words)
        longer = [i for i, w in enumerate(words) if len(w) >= 5]
        if longer:
            i = rnd.choice(longer)
            cut = rnd.randrange(len(words[i]))
            words[i] = words[i][:cut] + words[i][cut + 1 :]
        words.insert(rnd.randrange(len(words) + 1), rnd.choice(["mate", "now", "ok", "hmm"]))
        made.append((" ".join(words), intent))
    return made


def matcher_time(intent_count: int, message_count: int) -> tuple[float, float, float]:
    """Seconds to build the matcher, seconds per message, and the share of right guesses."""
    rnd = random.Random(12)
    given = intents(intent_count, rnd)
    started = time.perf_counter()
    matcher = Matcher(given)
    built = time.perf_counter() - started
    tried = messages(given, message_count, rnd)
    right = 0
    started = time.perf_counter()
    for text, meant in tried:
        found = matcher.best(text)
        right += found is not None and found.intent == meant
    per_message = (time.perf_counter() - started) / len(tried)
    return built, per_message, right / len(tried)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the engine runs")
    parser.add_argument("--intents", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args(argv)
    rate = engine_turns_per_second(args.seconds)
    print(f"engine: {rate:,.0f} turns/s on the pizza bot, one process, one thread")
    built, per_message, right = matcher_time(args.intents, args.messages)
    print(
        f"matcher: {per_message * 1e6:,.0f} µs per message with {args.intents} intents "
        f"({right:.0%} right; built in {built * 1000:,.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
