"""Decoding what `ingress.lua` answers into one outcome per case."""

from __future__ import annotations

from typing import Any

import pytest

from broker.conversations.ingress import (
    GuardChanged,
    KeyReused,
    OverLimit,
    Queued,
    Repeated,
    ScriptAnswer,
    Throttled,
    decode_answer,
)


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ([1, "in_1", 1], Queued("in_1", wake_needed=True)),
        # Woken by the script itself (on the ready list), or a turn is already pending.
        ([1, "in_1", 2], Queued("in_1", wake_needed=False)),
        ([1, "in_1", 0], Queued("in_1", wake_needed=False)),
        ([0, "in_1", 0, 2], Repeated("in_1", seen_key=2)),
        ([-1, "keys", 1001], OverLimit("keys", 1001)),
        ([-1, "bytes", 262145], OverLimit("bytes", 262145)),
        ([-2], GuardChanged()),
        ([-3, 4500], Throttled(4500)),
        ([-4, "in_0", 1], KeyReused("in_0", seen_key=1)),
    ],
)
def test_each_answer_is_decoded_into_its_outcome(answer: list[Any], outcome: ScriptAnswer) -> None:
    assert decode_answer(answer) == outcome
