"""A conversation's transcript is bounded in bytes as well as items: each commit counts what it
adds in the meta's `transcriptBytes` and pops the oldest items while over either limit; an
`offload` event carries no more than the transcript keeps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from broker.channels.channel import Channel
from broker.conversations import agent_actions, conversation_store, turns
from broker.conversations.transcript import newest_within, size
from broker.core import ids, keys
from broker.core.connection import Redis
from broker.core.settings import Settings
from broker.delivery import fanout, offloading
from broker.delivery.fanout import TurnCommit
from tests.conversations import new_channel, read_meta, user_says
from tests.fakes import RecordingSender

CONVERSATION = "c1"


def _commit(r: Redis, settings: Settings, items: list[dict[str, Any]]) -> None:
    r.set(keys.conversation_lock(CONVERSATION), "t")
    (done,) = fanout.commit_turns(
        r,
        settings,
        [TurnCommit(CONVERSATION, meta={"state": "s"}, transcript=items)],
        lock_token="t",
        claim_token=ids.random_hex(8),
        end_turns=False,
    )
    assert not done.lost


def _stored(r: Redis, conversation_key: str = CONVERSATION) -> list[str]:
    return r.lrange(keys.conversation_transcript(conversation_key), 0, -1)


def _bytes(entries: list[str]) -> int:
    return sum(len(entry.encode()) for entry in entries)


def _counted(r: Redis, conversation_key: str = CONVERSATION) -> int:
    return int(r.hget(keys.conversation_meta(conversation_key), "transcriptBytes") or 0)


def _said(n: int, text: str) -> dict[str, Any]:
    return {"actor": "user", "timestamp": "2026-12-01T00:00:00Z", "message": {"text": text * n}}


def _offloaded(
    r: Redis, settings: Settings, channel: Channel, key: str, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """The user asks for a human, and the bot turn offloads; returns how many transcript items
    each read of the transcript gave."""
    read: list[int] = []
    lrange = r.lrange

    def counted_lrange(name: str, start: int, end: int) -> Any:
        found = lrange(name, start, end)
        if name == keys.conversation_transcript(key):
            read.append(len(found))
        return found

    with monkeypatch.context() as patched:
        patched.setattr(r, "lrange", counted_lrange)
        user_says(r, settings, RecordingSender(), channel, "human")
        turns.run_pending(r, settings, RecordingSender(), key)
    return read


def _offload_transcript(r: Redis, key: str) -> list[dict[str, Any]]:
    offload_id = read_meta(r, key).handover.offload_pending
    transcript: list[dict[str, Any]] = json.loads(
        r.hgetall(keys.delivery(key, offload_id))["body"]
    )["transcript"]
    return transcript


def test_a_transcript_over_its_bytes_keeps_its_newest_items_within_them(
    fake_redis: Redis, settings: Settings
) -> None:
    r = fake_redis
    settings = settings.with_changes(transcript_bytes=2_000)
    everything: list[dict[str, Any]] = []
    for turn in range(12):
        # Multibyte text: bytes, not characters, are counted.
        items = [_said(40 + turn, "é"), _said(30, "a")]
        everything += items
        _commit(r, settings, items)
        stored = _stored(r)
        assert _bytes(stored) <= 2_000
        assert _counted(r) == _bytes(stored)
    kept = [json.loads(entry) for entry in _stored(r)]
    assert kept == everything[-len(kept) :]  # the newest, in order
    assert kept == newest_within(everything, 5_000, 2_000)
    # The next older item would not have fitted.
    assert _bytes(_stored(r)) + size(everything[-len(kept) - 1]) > 2_000


def test_the_count_of_items_still_bounds_the_transcript_and_its_bytes_stay_counted(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = fake_redis
    monkeypatch.setattr(fanout, "TRANSCRIPT_MAX", 5)
    everything: list[dict[str, Any]] = []
    for turn in range(4):
        items = [_said(turn + 1, "x"), _said(turn + 1, "ü"), _said(1, "y")]
        everything += items
        _commit(r, settings, items)
        assert _counted(r) == _bytes(_stored(r))
    assert [json.loads(entry) for entry in _stored(r)] == everything[-5:]


def test_an_item_larger_than_the_budget_alone_is_not_kept(
    fake_redis: Redis, settings: Settings
) -> None:
    r = fake_redis
    settings = settings.with_changes(transcript_bytes=500)
    _commit(r, settings, [_said(10, "a")])
    _commit(r, settings, [_said(1_000, "b")])
    assert _stored(r) == []
    assert _counted(r) == 0
    _commit(r, settings, [_said(10, "c")])
    assert _counted(r) == _bytes(_stored(r)) > 0


def test_a_transcript_kept_before_its_bytes_were_counted_is_counted_from_its_tail(
    fake_redis: Redis, settings: Settings
) -> None:
    r = fake_redis
    old = [json.dumps(_said(100, "o"), ensure_ascii=False) for _ in range(300)]
    r.rpush(keys.conversation_transcript(CONVERSATION), *old)  # no `transcriptBytes`
    settings = settings.with_changes(transcript_bytes=10 * len(old[0].encode()))
    new = _said(1, "n")
    _commit(r, settings, [new])
    stored = _stored(r)
    assert json.loads(stored[-1]) == new
    assert len(stored) == 10  # the new item and nine old ones; the tenth would not fit
    assert _counted(r) == _bytes(stored) <= settings.transcript_bytes


def test_the_count_of_a_transcript_that_expired_starts_again(
    fake_redis: Redis, settings: Settings
) -> None:
    r = fake_redis
    _commit(r, settings, [_said(50, "a"), _said(50, "b")])
    r.delete(keys.conversation_transcript(CONVERSATION))  # as if it expired before the meta
    _commit(r, settings, [_said(5, "c")])
    assert _counted(r) == _bytes(_stored(r)) == size(_said(5, "c"))


def test_bot_turns_and_agent_messages_keep_the_count_right(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    settings = settings.with_changes(transcript_bytes=4_000)
    channel = new_channel(r, settings)
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    for n in range(8):
        user_says(r, settings, sender, channel, "ünïcödé " * (20 + n))
        turns.run_pending(r, settings, sender, key)
        conversation = conversation_store.find(r, channel.bot_id, "LIVE", "u1")
        agent_actions.act(
            r, settings, sender, conversation, messages=[{"text": f"agent {n} " + "ß" * 50}]
        )
        stored = _stored(r, key)
        assert _counted(r, key) == _bytes(stored) <= 4_000
    items, total = conversation_store.transcript_page(r, conversation, 0, 100)
    assert total == len(stored) == len(items) < 8 * 3  # the oldest went
    assert items[-1]["actor"] == "agent"
    assert items[-1]["message"]["text"].startswith("agent 7 ")  # the newest kept, oldest first


def test_an_offload_carries_what_the_transcript_keeps(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    r, sender = fake_redis, RecordingSender()
    monkeypatch.setattr(offloading, "health_check", lambda *args: None)
    settings = settings.with_changes(transcript_bytes=6_000)
    channel = new_channel(r, settings)
    offloading.configure(r, settings, channel.bot_id, "http://127.0.0.1:9/desk", "vt-123")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    for n in range(30):
        user_says(r, settings, sender, channel, f"{n} " + "ж" * 100)
        turns.run_pending(r, settings, sender, key)
    read = _offloaded(r, settings, channel, key, monkeypatch)

    transcript = _offload_transcript(r, key)
    stored = [json.loads(entry) for entry in _stored(r, key)]
    assert transcript == stored  # what GET .../messages shows once the turn is saved
    assert transcript[-1]["message"]["text"] == "human"
    assert sum(size(item) for item in transcript) <= 6_000
    assert sum(read) <= 2 * len(stored) + 256


def test_an_offload_reads_a_long_history_from_its_tail_in_growing_pages(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    r, sender = fake_redis, RecordingSender()
    monkeypatch.setattr(offloading, "health_check", lambda *args: None)
    channel = new_channel(r, settings)
    offloading.configure(r, settings, channel.bot_id, "http://127.0.0.1:9/desk", "vt-123")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    user_says(r, settings, sender, channel, "hi")
    turns.run_pending(r, settings, sender, key)
    earlier = [json.dumps(_said(1, str(n))) for n in range(1_000)]
    r.rpush(keys.conversation_transcript(key), *earlier)
    r.hset(keys.conversation_meta(key), "transcriptBytes", _bytes(_stored(r, key)))
    read = _offloaded(r, settings, channel, key, monkeypatch)

    transcript = _offload_transcript(r, key)
    assert transcript == [json.loads(entry) for entry in _stored(r, key)]
    assert len(transcript) == 1_003  # hi, its answer, the 1,000, human
    assert read == [256, 512, 234]
