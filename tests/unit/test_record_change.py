"""Changing a record beside other requests that change it (`broker.core.record_change`), and
the channel changes built on it: none is lost, whatever the order."""

from __future__ import annotations

from typing import Any

import pytest

from broker.channels import channel_store
from broker.core import keys, record_change
from broker.core.connection import Redis
from broker.core.errors import Conflict
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
