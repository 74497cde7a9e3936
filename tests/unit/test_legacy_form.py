"""The legacy inbound form (docs/wire-contract.md §1b): when its text is read as a button press."""

from __future__ import annotations

from typing import Any

import pytest

from broker.bots import payload_secret
from broker.channels import legacy_form
from broker.channels.channel import Channel
from broker.core import ids
from broker.core.connection import Redis
from broker.core.errors import ValidationFailed

CHANNEL = Channel("ch_1", "bot_1", "LIVE", "t", "hash", 0.0)


def _body(text: str, sender: str = "s") -> legacy_form.LegacyMessage:
    return legacy_form.LegacyMessage(
        text=text, sender=legacy_form.Sender(id=sender), verifyToken="t"
    )


def _sealed(r: Redis, sender: str) -> str:
    """A payload of our buttons, as the conversation of `sender` on CHANNEL would send it."""
    conversation_key = ids.conversation_key("bot_1", "LIVE", "ch_1", sender)
    return payload_secret.key_for(r, conversation_key).seal("s3", [{"key": "a", "value": 1}])


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("hello", {"kind": "text", "text": "hello"}),
        ("{not json", {"kind": "text", "text": "{not json"}),
        ('{"caption": "no target"}', {"kind": "text", "text": '{"caption": "no target"}'}),
        ("[1, 2]", {"kind": "text", "text": "[1, 2]"}),
        (
            '{"nextDialogstateId": "s2", "params": "oops", "caption": 7}',
            {"kind": "postback", "title": None, "payload": None, "nextDialogstateId": "s2"},
        ),
        (
            '{"payload": "OPAQUE", "type": "postback", "caption": "Go"}',
            {"kind": "postback", "title": "Go", "payload": "OPAQUE"},
        ),
        # JSON that strict reading refuses, but no button press: the user's words.
        ('{"x":NaN}', {"kind": "text", "text": '{"x":NaN}'}),
        ('{"x":"\\udc00"}', {"kind": "text", "text": '{"x":"\\udc00"}'}),
        ('{"x":1e999}', {"kind": "text", "text": '{"x":1e999}'}),
        ('{"x":' + "[" * 150 + "]" * 150 + "}", None),
        ('{"nextDialogstateId": "s", "x": ' + "[" * 3000 + "]" * 3000 + "}", None),
        # Text that starts as our payloads do but is none of ours: the user's words too.
        ("sb2.hello.world", {"kind": "text", "text": "sb2.hello.world"}),
        ("sb1.eyJnIjoiczMiLCJwIjpbXX0", {"kind": "text", "text": "sb1.eyJnIjoiczMiLCJwIjpbXX0"}),
    ],
)
def test_text_is_read_as_a_button_press_only_when_it_is_one(
    fake_redis: Redis, text: str, normal: dict[str, Any] | None
) -> None:
    expected = normal or {"kind": "text", "text": text}
    assert legacy_form.normalize(fake_redis, CHANNEL, _body(text)) == expected


def test_a_payload_of_ours_is_a_button_press_in_its_own_conversation_only(
    fake_redis: Redis,
) -> None:
    sealed = _sealed(fake_redis, "s")
    pressed = {"kind": "postback", "title": None, "payload": sealed}
    assert legacy_form.normalize(fake_redis, CHANNEL, _body(sealed)) == pressed
    other = legacy_form.normalize(fake_redis, CHANNEL, _body(sealed, sender="someone else"))
    assert other == {"kind": "text", "text": sealed}


@pytest.mark.parametrize(
    "pressed",
    [
        '{"nextDialogstateId": "s", "params": [{"key": "k", "value": NaN}]}',
        '{"payload": "P", "caption": "\\udc00"}',
        '{"nextDialogstateId": "s", "x": ' + "[" * 150 + "]" * 150 + "}",
    ],
)
def test_a_button_press_that_json_cannot_carry_is_refused(fake_redis: Redis, pressed: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        legacy_form.normalize(fake_redis, CHANNEL, _body(pressed))
    assert refused.value.field == "text"
