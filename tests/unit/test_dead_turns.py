"""Dead letters of turns on fakeredis: a message whose turn keeps failing is parked with its
error, and its conversation goes on; a turn that lost its lock saves nothing."""

from __future__ import annotations

import logging
import time
import types
from collections.abc import Callable
from typing import Any

import pytest

from broker.bots.engine import Engine, Memory, Turn
from broker.conversations import dead_turns, turns
from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.errors import NotFound
from broker.core.settings import Settings
from broker.delivery import fanout
from broker.delivery.fanout import TurnCommit
from tests.conversations import new_channel, queued_bodies, read_meta, user_says
from tests.fakes import RecordingSender


@pytest.fixture(params=["in the dialogue", "in the commit"])
def poisoned(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The turn fails on the text "poison", every time: in the dialogue, or when the turn is
    saved (as a lone surrogate fails in Redis's cjson, after the turn changed its meta)."""
    if request.param == "in the dialogue":
        real_step = Engine.step

        def step(self: Engine, memory: Memory, message: dict[str, Any], **kwargs: Any) -> Turn:
            if message.get("text") == "poison":
                raise RuntimeError("the dialogue cannot take this message")
            return real_step(self, memory, message, **kwargs)

        monkeypatch.setattr(Engine, "step", step)
        return
    real_commit = fanout.commit_turns

    def commit_turns(r: Redis, settings: Settings, commits: list[TurnCommit], **kw: Any) -> Any:
        if any("You said: poison" in d.body for c in commits for d in c.deliveries):
            raise RuntimeError("the dialogue cannot take this message")
        return real_commit(r, settings, commits, **kw)

    monkeypatch.setattr(fanout, "commit_turns", commit_turns)


def _replies(r: Redis, conversation_key: str, endpoint_id: str) -> list[str]:
    return [body["message"]["text"] for body in queued_bodies(r, conversation_key, endpoint_id)]


@pytest.mark.usefixtures("poisoned")
def test_a_message_that_fails_its_turn_three_times_is_parked_and_the_next_one_answered(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, "poison")
    user_says(r, settings, sender, channel, "after")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    for attempt in (1, 2):
        turns.run_pending(r, settings, sender, key)
        meta = read_meta(r, key)
        assert meta.failures == attempt and meta.failed_on.startswith("message:")
        assert r.llen(keys.conversation_inbox(key)) == 2  # nothing taken, nothing lost
        due = r.zscore(keys.TURNS, key)
        assert due is not None and due > clock.now() + settings.turn_retry_delay - 1
        assert _replies(r, key, channel.id) == []
    turns.run_pending(r, settings, sender, key)
    assert r.llen(keys.conversation_inbox(key)) == 0
    assert _replies(r, key, channel.id) == ["You said: after"]
    assert read_meta(r, key).failures == 0
    items, total = dead_turns.list_page(r, offset=0, limit=10)
    assert total == 1
    (dead,) = items
    assert (dead["botId"], dead["channelId"], dead["sessionId"], dead["kind"]) == (
        channel.bot_id,
        channel.id,
        "u1",
        "message",
    )
    assert dead["item"]["text"] == "poison" and dead["attempts"] == settings.turn_attempts
    assert dead["error"] == "RuntimeError: the dialogue cannot take this message"
    assert dead_turns.list_page(r, offset=0, limit=10, bot_id=channel.bot_id)[1] == 1
    assert dead_turns.list_page(r, offset=0, limit=10, bot_id="bot_other")[1] == 0


@pytest.mark.usefixtures("poisoned")
def test_a_failing_batch_is_tried_again_one_message_at_a_time(
    fake_redis: Redis, settings: Settings
) -> None:
    """The failure is pinned on the message that causes it: those before it are answered."""
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    for text in ("one", "poison", "two"):
        user_says(r, settings, sender, channel, text)
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    for _ in range(settings.turn_attempts + 1):
        turns.run_pending(r, settings, sender, key)
    assert _replies(r, key, channel.id) == ["You said: one", "You said: two"]
    (dead,) = dead_turns.list_page(r, offset=0, limit=10)[0]
    assert dead["item"]["text"] == "poison"


@pytest.mark.usefixtures("poisoned")
def test_a_dead_letter_of_turns_is_replayed_or_discarded(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings.with_changes(turn_attempts=1))
    user_says(r, settings, sender, channel, "poison")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    turns.run_pending(r, settings.with_changes(turn_attempts=1), sender, key)
    (dead,) = dead_turns.list_page(r, offset=0, limit=10)[0]
    assert dead_turns.load(r, dead["id"]).item.startswith("{")
    sender.turns.clear()
    dead_turns.replay(r, settings, sender, dead["id"])
    assert sender.turns == [key]
    assert r.llen(keys.conversation_inbox(key)) == 1
    assert dead_turns.list_page(r, offset=0, limit=10)[1] == 0
    with pytest.raises(NotFound):
        dead_turns.replay(r, settings, sender, dead["id"])
    turns.run_pending(r, settings.with_changes(turn_attempts=1), sender, key)
    (again,) = dead_turns.list_page(r, offset=0, limit=10)[0]
    dead_turns.discard(r, again["id"])
    assert dead_turns.list_page(r, offset=0, limit=10) == ([], 0)
    assert not r.exists(keys.dead_turn(key, again["id"]))
    with pytest.raises(NotFound):
        dead_turns.discard(r, again["id"])
    with pytest.raises(NotFound):
        dead_turns.load(r, "dturn_nonsense")


def test_a_turn_that_lost_its_lock_saves_nothing(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit itself checks the lock, so a worker whose lease ran out
    while it worked (another took the conversation over) neither answers nor trims."""
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, "hi")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    # While the turn worked:
    _before_commit(monkeypatch, lambda: r.set(keys.conversation_lock(key), "another worker's"))
    assert turns.run_pending(r, settings, sender, key) == 0
    assert r.llen(keys.conversation_inbox(key)) == 1
    assert _replies(r, key, channel.id) == []
    assert r.get(keys.conversation_lock(key)) == "another worker's"
    assert r.zcard(keys.DUE) == 0  # the queue it would have claimed is not left listed


def test_a_message_whose_turn_keeps_outliving_its_lease_is_parked(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn that loses its lock while it runs (its worker was held up past the lease) saves
    nothing, and counts as a failed try: the message ends parked rather than run forever."""
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, "slow")
    user_says(r, settings, sender, channel, "after")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    real_commit = fanout.commit_turns
    late = [0.0]
    monkeypatch.setattr(
        turns, "time", types.SimpleNamespace(monotonic=lambda: time.monotonic() + late[0])
    )

    def outlived_its_lease(
        r: Redis, settings: Settings, commits: list[TurnCommit], **kw: Any
    ) -> Any:
        if any("You said: slow" in d.body for c in commits for d in c.deliveries):
            late[0] += settings.claim_lease  # the turn ran that long,
            r.delete(keys.conversation_lock(key))  # and its lease ran out meanwhile
        return real_commit(r, settings, commits, **kw)

    monkeypatch.setattr(fanout, "commit_turns", outlived_its_lease)
    # Both messages, then "slow" alone: the loss is pinned on it as a failure is.
    for _ in range(settings.turn_attempts + 1):
        assert turns.run_pending(r, settings, sender, key) == 0
        assert r.llen(keys.conversation_inbox(key)) == 2
        assert _replies(r, key, channel.id) == []
    meta = read_meta(r, key)
    assert meta.failures == settings.turn_attempts and meta.failed_on.startswith("message:")
    turns.run_pending(r, settings, sender, key)
    assert _replies(r, key, channel.id) == ["You said: after"]
    assert r.llen(keys.conversation_inbox(key)) == 0 and read_meta(r, key).failures == 0
    (dead,) = dead_turns.list_page(r, offset=0, limit=10)[0]
    assert dead["item"]["text"] == "slow" and dead["attempts"] == settings.turn_attempts
    assert dead["error"].startswith("LeaseLost: the turn ran longer than its lease")


def test_a_turn_whose_lock_redis_lost_within_its_lease_runs_again_at_once_uncounted(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failover lost the lock the turn had just taken (it was written to the old master
    only): that is no fault of the message, and the turn is handed back to run again at
    once rather than when its claim on the turn schedule runs out."""
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, "hi")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    _before_commit(monkeypatch, lambda: r.delete(keys.conversation_lock(key)))
    assert turns.run_pending(r, settings, sender, key) == 0
    assert read_meta(r, key).failures == 0
    assert r.lrange(keys.READY, 0, -1) == [key]  # a runner takes it at once
    monkeypatch.undo()
    assert turns.run_pending(r, settings, sender, key) == 1
    assert _replies(r, key, channel.id) == ["You said: hi"]


def test_a_turn_stops_when_its_lock_is_lost_between_passes(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, "one")
    user_says(r, settings, sender, channel, "two")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    monkeypatch.setattr(turns, "TURN_BATCH", 1)  # a pass per message
    real_commit = fanout.commit_turns

    def then_taken_over(*args: Any, **kwargs: Any) -> Any:
        done = real_commit(*args, **kwargs)
        r.set(keys.conversation_lock(key), "another worker's")
        return done

    monkeypatch.setattr(fanout, "commit_turns", then_taken_over)
    assert turns.run_pending(r, settings, sender, key) == 1
    assert r.llen(keys.conversation_inbox(key)) == 1
    assert _replies(r, key, channel.id) == ["You said: one"]


def test_a_turn_that_lost_its_lock_waiting_outside_is_logged_with_its_ids(
    fake_redis: Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, "one")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")

    def lost_before_its_wait(batch: Any, *args: Any) -> int:
        raise turns._LeaseLost(key)  # as `_Batch.before_wait` raises it

    monkeypatch.setattr(turns._Batch, "_turn", lost_before_its_wait)
    with caplog.at_level(logging.INFO, logger=turns.__name__):
        turns.run_pending(r, settings, sender, key)
    (left,) = [line for line in caplog.records if "lock was lost" in line.getMessage()]
    fields = left.__dict__["switchboard_fields"]
    assert (fields["sessionId"], fields["botId"], fields["channelId"]) == (
        "u1",
        channel.bot_id,
        channel.id,
    )
    assert key not in left.getMessage()


def _turn_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == dead_turns.__name__]


def test_a_turn_past_a_limit_logs_one_line_with_its_ids_and_no_traceback(
    fake_redis: Redis, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    r, sender = fake_redis, RecordingSender()
    settings = settings.with_changes(conversation_variables_bytes=300)
    channel = new_channel(r, settings)
    accepted = user_says(r, settings, sender, channel, "hi", sessionData={"blob": "x" * 400})
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    with caplog.at_level(logging.INFO):
        for _ in range(settings.turn_attempts):
            turns.run_pending(r, settings, sender, key)
    *failures, parked = _turn_lines(caplog)
    assert [line.levelno for line in failures] == [logging.WARNING] * settings.turn_attempts
    assert parked.levelno == logging.ERROR
    for line in [*failures, parked]:
        assert line.exc_info is None
        fields = line.__dict__["switchboard_fields"]
        assert fields["error"].startswith("TooLarge: ")
        assert (fields["sessionId"], fields["botId"], fields["channelId"]) == (
            "u1",
            channel.bot_id,
            channel.id,
        )
        assert fields["messageId"] == accepted.message_id
        assert key not in line.getMessage()


@pytest.mark.usefixtures("poisoned")
def test_a_turn_failing_by_a_bug_logs_its_traceback(
    fake_redis: Redis, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    accepted = user_says(r, settings, sender, channel, "poison")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    with caplog.at_level(logging.WARNING):
        turns.run_pending(r, settings, sender, key)
    (failed,) = _turn_lines(caplog)
    assert failed.exc_info is not None and isinstance(failed.exc_info[1], RuntimeError)
    fields = failed.__dict__["switchboard_fields"]
    assert (fields["sessionId"], fields["messageId"], fields["attempt"]) == (
        "u1",
        accepted.message_id,
        1,
    )


def _before_commit(monkeypatch: pytest.MonkeyPatch, change: Callable[[], object]) -> None:
    """`change` happens to Redis while each turn works, just before it commits."""
    real_commit = fanout.commit_turns

    def changed_first(*args: Any, **kwargs: Any) -> Any:
        change()
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(fanout, "commit_turns", changed_first)
