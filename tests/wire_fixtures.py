"""The documents of tests/fixtures/, written from the wire contract (docs/wire-contract.md), and
what tests build from them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
BOT_MESSAGES = FIXTURES / "botmessages"
#: Every kind of BotMessage that the wire contract shows (§3), one fixture each.
BOT_MESSAGE_KINDS = sorted(path.stem for path in BOT_MESSAGES.glob("*.json"))
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def wire_fixture(name: str) -> Any:
    """The JSON document tests/fixtures/`name`, read anew (the caller may change it)."""
    return json.loads((FIXTURES / name).read_text())


def bot_message(kind: str) -> dict[str, Any]:
    """The wire contract's example BotMessage of one kind (one of BOT_MESSAGE_KINDS)."""
    message: dict[str, Any] = wire_fixture(f"botmessages/{kind}.json")
    return message


def outbound_message() -> dict[str, Any]:
    """The wire contract's example of the document a bot reply is POSTed as (§2)."""
    example: dict[str, Any] = wire_fixture("outbound_message.json")
    return example


def assert_shaped_like_the_outbound_example(document: dict[str, Any]) -> None:
    """The document has the example's fields, each of the example's type, and its timestamp
    is ISO 8601 in UTC with milliseconds."""
    example = outbound_message()
    assert set(document) == set(example)
    assert set(document["recipient"]) == set(example["recipient"])
    for name, value in example.items():
        assert type(document[name]) is type(value), name
    assert ISO_MS.match(document["timestamp"]), document["timestamp"]


def definition_saying(message: Any, *, at: int = 2) -> dict[str, Any]:
    """A bot definition of states s0 to s`at` in which state s`at` says `message`."""
    states: list[dict[str, Any]] = [{"id": f"s{i}"} for i in range(at + 1)]
    states[at]["messages"] = [message]
    return {"startState": "s0", "states": states}


def empty_generic_template() -> dict[str, Any]:
    """The wire contract's generic template with no elements: not a valid BotMessage."""
    message = bot_message("generic_template")
    message["attachment"]["payload"]["elements"] = []
    return message
