"""`switchboard bot validate|test|schema`: offline, with readable faults and diffs, and exit
codes that tell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.bots import conversation_tests, definition, definition_v2, documents
from broker.bots.program import compile_definition
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


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("latin1.yaml", b"\xff\xfe name: x", "is not UTF-8 text (byte 0 cannot be read)"),
        ("deep.json", b"[" * 100_000, "nested more than 100 deep"),
        ("deep.yaml", b"a: " + b"[" * 100_000, "is nested too deeply"),
        ("deeper.yaml", b"a: " + b"[" * 200 + b"]" * 200, "nested more than 100 deep"),
        ("nan.json", b'{"a": NaN}', "is not valid JSON"),
    ],
)
def test_an_unreadable_file_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: bytes, said: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    for args in (("validate", str(path)), ("test", PIZZA, str(path))):
        code, _, err = run_cli(capsys, "bot", *args)
        assert code == 2 and said in err and len(err.splitlines()) == 1, err


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
_STEP = st.sampled_from(
    ["intro", "say", "press", "postback", "location", "bot", "variables", "state", "offload"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(st.dictionaries(_STEP, _JSON, min_size=1, max_size=1), max_size=4),
    extra=st.dictionaries(st.sampled_from(["user", "sessionData", "apis", "offloading"]), _JSON),
    shared=_JSON,
)
def test_any_conversation_file_is_passed_or_failed_never_a_crash(
    steps: list[dict[str, object]], extra: dict[str, object], shared: object
) -> None:
    program = compile_definition(definition.validate(documents.load(Path(PIZZA)), prefix=""))
    document = {"apis": shared, "conversations": [{"name": "c", "steps": steps, **extra}]}
    (outcome,) = conversation_tests.run_file(program, document)
    assert outcome.name in ("c", "conversation 1")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("dup.yaml", "version: 2\nstartState: a\nstates:\n  a: {say: '1'}\n  a: {say: '2'}\n"),
        ("dup.json", '{"version": 2, "startState": "a", "states": {"a": {}, "a": {}}}'),
    ],
)
def test_a_key_given_twice_is_a_fault_naming_its_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    code, out, err = run_cli(capsys, "bot", "validate", str(path))
    assert code == 1
    assert out == f"{path}: states.a: is given twice\n"
    assert err == f"{path}: 1 fault(s)\n"


def test_a_yaml_merge_may_give_a_key_again() -> None:
    merged = "base: &base {say: hi, next: b}\nstate:\n  <<: *base\n  next: c\n"
    assert documents.parse(merged, "merge.yaml")["state"] == {"say": "hi", "next": "c"}
    with pytest.raises(documents.KeyTwice) as refused:
        documents.parse(merged + "  go: a\n  go: b\n", "merge.yaml")
    assert refused.value.field == "state.go"


def test_a_key_that_is_a_number_is_a_fault_not_a_crash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "numbers.yaml"
    path.write_text("version: 2\nstartState: a\nstates:\n  1: {say: x}\n  a: {say: y}\n")
    code, out, _ = run_cli(capsys, "bot", "validate", str(path))
    assert code == 1 and f"{path}: states: Input should be a valid string" in out
