"""The turn commit script on a real Redis, whose Lua cannot `unpack` a few thousand values."""

from __future__ import annotations

from broker.core import keys
from broker.core.connection import Redis
from broker.core.settings import Settings
from broker.delivery import fanout
from broker.delivery.fanout import TurnCommit


def test_a_turn_with_thousands_of_transcript_items_commits_whole(r: Redis) -> None:
    conversation = "c1"
    r.set(keys.conversation_lock(conversation), "t")
    items = [{"n": n} for n in range(9_000)]
    (done,) = fanout.commit_turns(
        r,
        Settings(),
        [TurnCommit(conversation, meta={"state": "s"}, transcript=items)],
        lock_token="t",
        claim_token="c",
        end_turns=False,
    )
    assert not done.lost
    assert r.llen(keys.conversation_transcript(conversation)) == 5_000  # the newest kept
