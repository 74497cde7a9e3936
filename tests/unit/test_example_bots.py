"""The example bots' conversation tests (examples/bots/*.tests.yaml), run offline as
`switchboard bot test` runs them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.bots import conversation_tests, definition, documents
from broker.bots.program import compile_definition

EXAMPLES = Path(__file__).parents[2] / "examples" / "bots"
TESTS = sorted(EXAMPLES.glob("*.tests.yaml"))


@pytest.fixture(autouse=True)
def example_modules() -> Iterator[None]:
    """The examples' custom actions are importable, as `switchboard bot test` makes them."""
    sys.path.insert(0, str(EXAMPLES))
    yield
    sys.path.remove(str(EXAMPLES))


def test_every_example_bot_has_conversation_tests() -> None:
    bots = {p.stem for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".tests.yaml")}
    assert bots == {p.name.removesuffix(".tests.yaml") for p in TESTS} == {"pizza", "support"}


@pytest.mark.parametrize("tests", TESTS, ids=lambda p: p.name)
def test_the_conversations_go_as_written(tests: Path) -> None:
    bot = EXAMPLES / tests.name.replace(".tests.yaml", ".yaml")
    program = compile_definition(definition.validate(documents.load(bot)))
    outcomes = conversation_tests.run_file(program, documents.load(tests))
    assert len(outcomes) >= 5
    failed = [f"{o.name}:\n" + "\n".join(o.failures) for o in outcomes if not o.passed]
    assert not failed, "\n\n".join(failed)
