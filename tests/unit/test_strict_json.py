"""JSON from outside, read strictly (`broker.core.strict_json`)."""

from __future__ import annotations

import json

import pytest

from broker.core import strict_json


def test_json_within_the_limits_reads_as_json_loads_reads_it() -> None:
    text = '{"a": [1, 2.5, -3e10, "é", null, true], "b": {"c": "\\u00e9"}}'
    assert strict_json.loads(text) == json.loads(text)
    assert strict_json.loads(text.encode()) == json.loads(text)
    assert strict_json.loads(b"\xef\xbb\xbf[1]") == [1]  # a UTF-8 byte-order mark


@pytest.mark.parametrize(
    "text", ["1e999", "[-1E400]", '{"x": 1e309}', "NaN", "[Infinity]", "-Infinity"]
)
def test_what_json_cannot_carry_is_refused(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        strict_json.loads(text)
    assert not isinstance(refused.value, json.JSONDecodeError)


def test_bytes_must_be_utf8() -> None:
    with pytest.raises(json.JSONDecodeError):
        strict_json.loads('{"a": 1}'.encode("utf-16"))
    with pytest.raises(json.JSONDecodeError):
        strict_json.loads(b'{"a": 1}\xff')
    with pytest.raises(strict_json.InvalidText) as refused:
        strict_json.loads(b'{"a": [1, "caf\xe9"]}')
    assert refused.value.field == "a[1]"


def test_nesting_is_limited() -> None:
    deepest = "[" * strict_json.MAX_DEPTH + "]" * strict_json.MAX_DEPTH
    assert strict_json.loads(deepest)
    for depth in (strict_json.MAX_DEPTH + 1, 100_000):
        with pytest.raises(strict_json.TooDeep):
            strict_json.loads("[" * depth + "]" * depth)
    with pytest.raises(strict_json.TooDeep):
        strict_json.loads('{"a": ' * 101 + "1" + "}" * 101)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('"\\udc00"', "body"),
        ('{"a": {"b": ["ok", "\\ud800x"]}}', "a.b[1]"),
        ('{"a": {"\\udfff": 1}}', "a.\ufffd"),
    ],
)
def test_text_that_is_not_valid_unicode_is_named_by_its_path(text: str, field: str) -> None:
    with pytest.raises(strict_json.InvalidText) as refused:
        strict_json.loads(text)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"a": 1, "a": 2}', "a"),
        ('{"states": {"a": {"say": "1"}, "b": {}, "a": {"say": "2"}}}', "states.a"),
        ('{"l": [{}, {"q": [{"x": 1, "y": 2, "x": 1}]}]}', "l[1].q[0].x"),
    ],
)
def test_a_key_given_twice_is_named_by_its_path_when_asked(text: str, field: str) -> None:
    assert strict_json.loads(text) == json.loads(text)  # not asked: the last wins
    with pytest.raises(strict_json.DuplicateKey) as refused:
        strict_json.loads(text, unique_keys=True)
    assert refused.value.field == field
    assert str(refused.value) == f"{field}: is given twice"
    assert strict_json.loads('{"a": {"a": 1}, "b": {"a": 2}}', unique_keys=True)


def test_a_number_of_more_digits_than_python_converts_is_refused_in_plain_words() -> None:
    """Not Python's advice to call `sys.set_int_max_str_digits()`: the reason may reach a
    bot's user (`{{api.error}}`)."""
    with pytest.raises(ValueError) as refused:
        strict_json.loads('{"n": 1' + "0" * 5000 + "}")
    assert str(refused.value) == strict_json.NUMBER_TOO_LARGE
    assert strict_json.loads("1" + "0" * 4000) == 10**4000
