"""Button payloads (`broker.bots.payloads`): ours come back as they went, in the conversation
they were sent to; a forged, changed, unsigned or another conversation's payload does not
open, and never is an error in a turn."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import fakeredis
import pytest

from broker.bots import payload_secret
from broker.bots.payloads import PayloadKey, is_ours

KEY = PayloadKey.for_conversation("s3cret", "conversation-1")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _signed(raw: bytes, key: PayloadKey = KEY) -> str:
    """A payload of `raw`, sealed as `key` seals one (whatever `raw` holds)."""
    mac = hmac.new(key._key, raw, hashlib.sha256).digest()[:12]
    return f"sb2.{_b64(raw)}.{_b64(mac)}"


def test_a_payload_comes_back_as_it_went() -> None:
    params = [{"key": "size", "value": {"inches": 12}}]
    assert KEY.open(KEY.seal("pick", params)) == ("pick", params)
    assert KEY.open("not ours") is None


def test_a_payload_opens_only_in_its_conversation() -> None:
    payload = KEY.seal("pick", [])
    assert PayloadKey.for_conversation("s3cret", "conversation-2").open(payload) is None
    assert PayloadKey.for_conversation("other secret", "conversation-1").open(payload) is None


def test_a_forged_or_changed_payload_does_not_open() -> None:
    forged = {"g": "place", "p": [{"key": "kitchen.url", "value": "http://127.0.0.5/forged"}]}
    raw = json.dumps(forged, separators=(",", ":")).encode()
    unsigned = "sb1." + _b64(raw)
    assert KEY.open(unsigned) is None
    assert KEY.open(f"sb2.{_b64(raw)}") is None
    assert KEY.open(f"sb2.{_b64(raw)}.{_b64(b'x' * 12)}") is None
    genuine = KEY.seal("place", [])
    _data, mac = genuine.removeprefix("sb2.").split(".")
    assert KEY.open(f"sb2.{_b64(raw)}.{mac}") is None
    assert KEY.open("sb2.!!notbase64.!!") is None
    assert is_ours(unsigned) and is_ours(genuine) and not is_ours("SOME_CLIENT_PAYLOAD")


def test_a_payload_stays_compact() -> None:
    payload = KEY.seal("size", [{"key": "pizza", "value": "diavola"}])
    unsigned = _b64(b'{"g":"size","p":[{"key":"pizza","value":"diavola"}]}')
    assert len(payload) == len("sb2.") + len(unsigned) + len(".") + 16


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
def test_a_signed_payload_that_is_not_ours_in_shape_does_not_open(raw: bytes) -> None:
    assert KEY.open(_signed(raw)) is None


def test_variables_without_a_key_of_text_are_left_out() -> None:
    raw = b'{"g": "s", "p": [{"key": 5, "value": 1}, {"key": {"a": 1}}, {"key": ""}, {"key": "k"}]}'
    assert KEY.open(_signed(raw)) == ("s", [{"key": "k"}])


def test_the_deployment_secret_is_made_once_and_kept() -> None:
    r = fakeredis.FakeRedis(decode_responses=True)
    first = payload_secret.read(r)
    assert len(first) == 64 and payload_secret.read(r) == first
    payload = payload_secret.key_for(r, "c1").seal("s", [])
    assert payload_secret.key_for(r, "c1").open(payload) == ("s", [])
