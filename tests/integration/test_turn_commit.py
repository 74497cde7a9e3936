"""The turn commit script on a real Redis, whose Lua cannot `unpack` a few thousand values."""

from __future__ import annotations

import json

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
    kept = r.lrange(keys.conversation_transcript(conversation), 0, -1)
    assert kept == [json.dumps(item) for item in items[-5_000:]]  # the newest
    assert _counted(r, conversation) == sum(len(entry.encode()) for entry in kept)


def test_a_transcript_keeps_its_newest_items_within_its_bytes(r: Redis) -> None:
    conversation = "c1"
    r.set(keys.conversation_lock(conversation), "t")
    settings = Settings(transcript_bytes=100_000)
    for turn in range(30):
        items = [{"text": f"{turn} " + "日本語" * 1_000}]  # 9 KB each
        fanout.commit_turns(
            r,
            settings,
            [TurnCommit(conversation, transcript=items)],
            lock_token="t",
            claim_token=f"c{turn}",
            end_turns=False,
        )
    kept = r.lrange(keys.conversation_transcript(conversation), 0, -1)
    assert [json.loads(entry)["text"].split()[0] for entry in kept] == [
        str(turn) for turn in range(19, 30)
    ]
    assert _counted(r, conversation) == sum(len(entry.encode()) for entry in kept) <= 100_000


def _counted(r: Redis, conversation: str) -> int:
    """The transcript's bytes as its conversation's meta counts them."""
    return int(r.hget(keys.conversation_meta(conversation), "transcriptBytes") or 0)
