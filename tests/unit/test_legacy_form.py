"""The legacy inbound form (docs/wire-contract.md §1b): when its text is read as a button press."""

from __future__ import annotations

from typing import Any

import pytest

from broker.bots.payloads import PayloadKey
from broker.channels import legacy_form

SEALED = PayloadKey.random().seal("s3", [{"key": "a", "value": 1}])


def _body(text: str) -> legacy_form.LegacyMessage:
    return legacy_form.LegacyMessage(text=text, sender=legacy_form.Sender(id="s"), verifyToken="t")


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
        (
            SEALED,
            {"kind": "postback", "title": None, "payload": SEALED},
        ),
        (
            "sb1.eyJnIjoiczMiLCJwIjpbXX0",
            {"kind": "postback", "title": None, "payload": "sb1.eyJnIjoiczMiLCJwIjpbXX0"},
        ),
    ],
)
def test_text_is_read_as_a_button_press_only_when_it_is_one(
    text: str, normal: dict[str, Any]
) -> None:
    assert legacy_form.normalize(_body(text)) == normal
