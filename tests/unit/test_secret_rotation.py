"""A rotation answers the secret it made, whatever another rotation wrote meanwhile."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from broker.channels import channel_store
from broker.core.connection import Redis
from broker.core.settings import Settings
from broker.delivery import endpoint_store, offloading
from broker.delivery.endpoint import Endpoint
from tests.conversations import new_channel


def _another_rotation_right_after(monkeypatch: pytest.MonkeyPatch, r: Redis) -> list[str]:
    """Make each rotation followed at once by another caller's; returns the secrets made."""
    made: list[str] = []
    change = endpoint_store.change

    def racing(redis: Redis, endpoint_id: str, how: Callable[[Endpoint], Endpoint]) -> Endpoint:
        written = change(redis, endpoint_id, how)
        made.append(written.secret)
        monkeypatch.setattr(endpoint_store, "change", change)  # the other caller's, plain
        endpoint_store.rotate_secret(r, endpoint_id)
        return written

    monkeypatch.setattr(endpoint_store, "change", racing)
    return made


def test_a_channel_s_rotation_answers_its_own_secret(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = new_channel(fake_redis, settings)
    made = _another_rotation_right_after(monkeypatch, fake_redis)

    answer = channel_store.rotate_secret(fake_redis, settings, channel.id)

    assert answer["signingSecret"] == made[0]
    assert endpoint_store.load(fake_redis, channel.id).secret != made[0]  # the other's, since


def test_the_offloading_rotation_answers_its_own_secret(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(offloading, "health_check", lambda *args: None)
    channel = new_channel(fake_redis, settings)
    offloading.configure(fake_redis, settings, channel.bot_id, "http://127.0.0.1:9/desk", "vt")
    made = _another_rotation_right_after(monkeypatch, fake_redis)

    answer = offloading.rotate_secret(fake_redis, settings, channel.bot_id)

    assert answer["signingSecret"] == made[0]
