"""Button payloads (`broker.bots.payloads`): ours come back as they went; a forged one is read
as no payload of ours, never as an error in a turn."""

from __future__ import annotations

import base64

import pytest

from broker.bots.payloads import decode_payload, encode_payload


def _forged(raw: bytes) -> str:
    return "sb1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_payload_comes_back_as_it_went() -> None:
    params = [{"key": "size", "value": {"inches": 12}}]
    assert decode_payload(encode_payload("pick", params)) == ("pick", params)
    assert decode_payload("not ours") is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"g": "s", "p": [{"key": "k", "value": ' + b"[" * 3000 + b"]" * 3000 + b"}]}",
        b'{"g": "s", "p": [{"key": "\\udc00", "value": "v"}]}',
        b'{"g": "s", "p": [{"key": "k", "value": 1e999}]}',
        b'{"g": "s", "p": [{"key": "k", "value": NaN}]}',
        b"\xff\xfe",
        b"[1]",
    ],
)
def test_a_forged_payload_is_not_ours(raw: bytes) -> None:
    assert decode_payload(_forged(raw)) is None


def test_variables_without_a_key_of_text_are_left_out() -> None:
    raw = b'{"g": "s", "p": [{"key": 5, "value": 1}, {"key": {"a": 1}}, {"key": ""}, {"key": "k"}]}'
    assert decode_payload(_forged(raw)) == ("s", [{"key": "k"}])
