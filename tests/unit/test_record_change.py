"""Changing a record beside other requests that change it (`broker.core.record_change`), and
the channel and bot changes built on it: none is lost, whatever the order."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from broker.bots import bot_store, definition
from broker.channels import channel_store
from broker.core import keys, record_change
from broker.core.connection import Redis
from broker.core.errors import Conflict, NotFound, ValidationFailed
from broker.core.locks import Lock
from broker.core.settings import Settings
from broker.delivery import endpoint_store
from broker.delivery.endpoint import Endpoint

KEY = "sb:test:record"


def test_only_the_fields_that_differ_are_written(fake_redis: Redis) -> None:
    fake_redis.hset(KEY, mapping={"a": "1", "b": "2"})
    written = record_change.change(fake_redis, KEY, lambda read: {**read, "b": "3", "c": "4"})
    assert written == {"a": "1", "b": "3", "c": "4"} == fake_redis.hgetall(KEY)


def test_a_field_changed_meanwhile_is_read_again_and_both_changes_stand(
    fake_redis: Redis,
) -> None:
    fake_redis.hset(KEY, mapping={"n": "1", "other": "x"})
    reads: list[dict[str, str]] = []

    def increment(read: dict[str, str]) -> dict[str, str]:
        reads.append(read)
        if len(reads) == 1:  # another request, between our read and our write
            fake_redis.hset(KEY, mapping={"n": "10", "other": "y"})
        return {**read, "n": str(int(read["n"]) + 1)}

    assert record_change.change(fake_redis, KEY, increment) == {"n": "11", "other": "y"}
    assert len(reads) == 2


def test_a_removed_record_is_not_written_again(fake_redis: Redis) -> None:
    assert record_change.change(fake_redis, KEY, lambda read: {"a": "1"}) is None

    fake_redis.hset(KEY, "a", "1")

    def removed_meanwhile(read: dict[str, str]) -> dict[str, str]:
        fake_redis.delete(KEY)
        return {"a": "2"}

    assert record_change.change(fake_redis, KEY, removed_meanwhile) is None
    assert not fake_redis.exists(KEY)


def test_a_record_that_never_settles_is_a_conflict(fake_redis: Redis) -> None:
    fake_redis.hset(KEY, "n", "0")

    def always_raced(read: dict[str, str]) -> dict[str, str]:
        fake_redis.hincrby(KEY, "n", 1)
        return {"n": "-1"}

    with pytest.raises(Conflict):
        record_change.change(fake_redis, KEY, always_raced)


def test_a_rotation_and_a_new_url_at_once_both_stand(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = fake_redis
    r.hset(keys.bot("bot_1"), mapping={"id": "bot_1"})
    channel = channel_store.create(r, settings, "bot_1", "http://127.0.0.1:9/old")
    first_secret = channel["signingSecret"]
    rotated = Endpoint.rotated

    def rotated_while_the_url_changes(endpoint: Any, secret: str, now: float) -> Any:
        monkeypatch.setattr(Endpoint, "rotated", rotated)
        channel_store.update(r, settings, channel["id"], {"webhookUrl": "http://127.0.0.1:9/new"})
        return rotated(endpoint, secret, now)

    monkeypatch.setattr(Endpoint, "rotated", rotated_while_the_url_changes)
    answer = channel_store.rotate_secret(r, settings, channel["id"])
    stored = endpoint_store.load(r, channel["id"])
    assert stored.url == answer["webhookUrl"] == "http://127.0.0.1:9/new"
    assert stored.secret == answer["signingSecret"] != first_secret
    assert [secret for secret, _ in stored.previous_secrets] == [first_secret]


def test_a_timeout_checked_against_the_total_still_holds_when_written(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`connectTimeout` 9 is checked against a total of 10; another request sets the total to
    5 meanwhile: the change is made again on what it wrote, and refused."""
    r = fake_redis
    r.hset(keys.bot("bot_1"), mapping={"id": "bot_1"})
    channel = channel_store.create(r, settings, "bot_1", "http://127.0.0.1:9/hook")
    channel_store.update(r, settings, channel["id"], {"totalTimeout": 10.0})
    checked = Endpoint.with_overrides
    calls: list[Endpoint] = []

    def total_changed_meanwhile(
        endpoint: Endpoint, settings: Settings, given: dict[str, Any]
    ) -> Endpoint:
        calls.append(endpoint)
        if len(calls) == 2:  # after the first check, before the write
            r.hset(keys.endpoint(channel["id"]), "totalTimeout", "5.0")
        return checked(endpoint, settings, given)

    monkeypatch.setattr(Endpoint, "with_overrides", total_changed_meanwhile)
    with pytest.raises(ValidationFailed) as refused:
        channel_store.update(r, settings, channel["id"], {"connectTimeout": 9.0})
    assert refused.value.field == "connectTimeout"
    stored = endpoint_store.load(r, channel["id"])
    assert (stored.connect_timeout, stored.total_timeout) == (0.0, 5.0)


def test_two_channels_made_at_once_with_one_verify_token_are_one_and_a_conflict(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = fake_redis
    r.hset(keys.bot("bot_1"), mapping={"id": "bot_1"})
    first_checked, second_waits = threading.Event(), threading.Event()
    check = channel_store._check_verify_token_free
    acquire = Lock.acquire

    def checked_then_held(*args: Any) -> None:
        check(*args)
        if not first_checked.is_set():
            first_checked.set()
            assert second_waits.wait(10)  # the other call is at the lock meanwhile

    def acquire_noting_a_wait(lock: Lock) -> bool:
        taken = acquire(lock)
        if not taken:
            second_waits.set()
        return taken

    monkeypatch.setattr(channel_store, "_check_verify_token_free", checked_then_held)
    monkeypatch.setattr(Lock, "acquire", acquire_noting_a_wait)
    outcomes: list[str] = []

    def make() -> None:
        try:
            channel_store.create(
                r, settings, "bot_1", "http://127.0.0.1:9/h", verify_token="same-token-0123456"
            )
            outcomes.append("made")
        except Conflict:
            outcomes.append("conflict")

    first = threading.Thread(target=make)
    first.start()
    assert first_checked.wait(10)
    make()
    first.join(10)
    assert sorted(outcomes) == ["conflict", "made"]
    assert [c.verify_token for c in channel_store.of_bot(r, "bot_1")] == ["same-token-0123456"]


def _definition(text: str) -> dict[str, Any]:
    return {"version": 2, "startState": "a", "states": {"a": {"say": text}}}


def _meanwhile(monkeypatch: pytest.MonkeyPatch, happen: Callable[[], object]) -> None:
    """`happen` runs while the next draft is being judged (a large one takes a while)."""
    judge = definition.validate

    def judged_slowly(given: Any, **kwargs: Any) -> dict[str, Any]:
        happen()
        return judge(given, **kwargs)

    monkeypatch.setattr(definition, "validate", judged_slowly)


def test_a_publish_while_a_draft_is_put_stands(
    fake_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = bot_store.create(fake_redis, "b", _definition("0"))
    bot_store.put_draft(fake_redis, bot["id"], _definition("1"))
    _meanwhile(monkeypatch, lambda: bot_store.publish(fake_redis, bot["id"]))

    bot_store.put_draft(fake_redis, bot["id"], _definition("2"))

    stored = bot_store.load(fake_redis, bot["id"])
    assert stored.live == _definition("1") and stored.draft == _definition("2")


def test_a_bot_deleted_while_a_draft_is_put_stays_deleted(
    fake_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = bot_store.create(fake_redis, "b", _definition("0"))
    _meanwhile(monkeypatch, lambda: bot_store.delete(fake_redis, bot["id"]))

    with pytest.raises(NotFound):
        bot_store.put_draft(fake_redis, bot["id"], _definition("1"))
    assert not bot_store.exists(fake_redis, bot["id"])
    with pytest.raises(NotFound):
        bot_store.publish(fake_redis, bot["id"])
    assert not bot_store.exists(fake_redis, bot["id"])
