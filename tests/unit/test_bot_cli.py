"""`switchboard bot validate|test|schema`: offline, with readable faults and diffs, and exit
codes that tell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker.bots import definition_v2
from tests.command_line import run_cli

EXAMPLES = Path(__file__).parents[2] / "examples" / "bots"
PIZZA = str(EXAMPLES / "pizza.yaml")


def test_validate_says_a_good_file_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "bot", "validate", PIZZA)
    assert code == 0
    assert out == f"{PIZZA}: valid (version 2, 20 states, 4 intents)\n"


def test_validate_lists_every_fault_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "version: 2\nstartState: order\nstates:\n"
        "  order: {say: 'Which pizza?', next: pay}\n"
        "  size: {type: input, variable: size, expect: shoe, next: order}\n"
    )
    code, out, err = run_cli(capsys, "bot", "validate", str(broken))
    assert code == 1
    assert out.splitlines() == [
        f"{broken}: states.size.expect: Input should be 'text', 'number', 'email', 'phone', "
        "'date', 'choice' or 'yesno'",
        f'{broken}: states.order.next: unknown state "pay"',
    ]
    assert err == f"{broken}: 2 fault(s)\n"


def test_a_file_that_is_not_yaml_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    code, _, err = run_cli(capsys, "bot", "validate", str(broken))
    assert code == 2 and "is not valid JSON" in err


def test_test_runs_the_conversations(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "bot", "test", PIZZA, str(EXAMPLES / "pizza.tests.yaml"))
    assert code == 0
    assert out.splitlines()[-1] == "6 passed, 0 failed"


def test_a_conversation_that_goes_otherwise_is_shown_as_a_diff_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    conversation = tmp_path / "wrong.tests.yaml"
    conversation.write_text(
        "conversations:\n"
        "  - name: the menu\n"
        "    steps:\n"
        "      - say: show me the menu\n"
        "      - bot: [Margherita only., 'Which pizza? [Margherita] [Funghi] [Diavola]']\n"
        "      - variables: {intent.name: order}\n"
        "      - press: Quattro Stagioni\n"
    )
    code, out, _ = run_cli(capsys, "bot", "test", PIZZA, str(conversation))
    assert code == 1
    assert out.splitlines() == [
        f"FAIL {conversation}: the menu",
        "    step 2: the bot's answer differs",
        "    --- expected",
        "    +++ the bot said",
        "    @@ -1,2 +1,2 @@",
        "    -Margherita only.",
        "    +Margherita 9.50, Funghi 11.00, Diavola 12.00.",
        "     Which pizza? [Margherita] [Funghi] [Diavola]",
        "    step 3: variables differ",
        '      intent.name: expected "order", holds "menu"',
        "    step 4: nothing to press titled 'Quattro Stagioni'; the bot offered "
        "['Margherita', 'Funghi', 'Diavola']",
        "0 passed, 1 failed",
    ]


def test_schema_prints_the_published_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "bot", "schema")
    assert code == 0 and json.loads(out) == definition_v2.schema()
